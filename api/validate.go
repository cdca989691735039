package api

// The rules for what an endpoint may hold are written once, below HTTP, and
// this package only applies them:
//
//   - a destination URL: [delivery.Guard.ValidateURL] of [Config.Guard] —
//     kapsel.CheckURL's syntax (http or https, a host, no credentials) and
//     then the SSRF guard the dispatcher dials through, AllowedCIDRs
//     included, so the API refuses exactly what delivery would refuse (I7);
//   - custom headers: kapsel.CheckHeaders;
//   - ingest verifiers: kapsel.VerifierConfig.Validate, after the scheme is
//     checked against the schemes this API accepts;
//   - signing secrets: kapsel.CheckSigningSecret.
//
// The stores apply the same syntactic rules again (kapsel.Endpoint's
// ValidateConfig), so an embedder writing through a store directly is held
// to them too.

// maxNameLength limits an endpoint's name, in bytes.
const maxNameLength = 255

// clip shortens caller input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
