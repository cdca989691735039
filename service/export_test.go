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

// SetBackfillBounds changes how many events a backfill looks at per store
// call and per BackfillEndpoint call, before the service is used.
func (s *Service) SetBackfillBounds(round, budget int) { s.backfill = backfillBounds{round, budget} }

// RetentionOn reports whether the service runs retention.
func (s *Service) RetentionOn() bool { return s.retention != nil }
