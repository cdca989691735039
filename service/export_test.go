package service

// RoutePatterns returns the ServeMux patterns of the management routes, for
// the test that checks the OpenAPI document against them.
func (s *Service) RoutePatterns() []string {
	var out []string
	for _, rt := range s.routeTable() {
		out = append(out, rt.pattern)
	}
	return out
}
