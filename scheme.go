package kapsel

import (
	"slices"
)

// Verifier schemes for [VerifierConfig.Scheme]: the names of the verifiers
// package ingest/verify implements (docs/ingest.md). [BuiltinSchemes] lists them;
// that list is the only one — the verifier registry, the management API and
// the stores' validation all read it.
const (
	SchemeNone             = "none"
	SchemeHMACSHA256       = "hmac-sha256"
	SchemeGitHub           = "github"
	SchemeStripe           = "stripe"
	SchemeStandardWebhooks = "standard-webhooks"
	SchemeShopify          = "shopify"
	SchemeSlack            = "slack"
)

// builtinSchemes is the one list of built-in scheme names, in the order
// docs/ingest.md gives them.
var builtinSchemes = []string{
	SchemeNone, SchemeHMACSHA256, SchemeGitHub, SchemeStripe,
	SchemeStandardWebhooks, SchemeShopify, SchemeSlack,
}

// BuiltinSchemes returns the names of the built-in verifier schemes, in the
// order docs/ingest.md lists them. The slice is the caller's to keep or change.
func BuiltinSchemes() []string { return slices.Clone(builtinSchemes) }

// IsBuiltinScheme reports whether scheme is one of the built-in verifier
// schemes. The empty scheme, which means "none", is not.
func IsBuiltinScheme(scheme string) bool { return slices.Contains(builtinSchemes, scheme) }

// Limits on a [VerifierConfig], checked by [VerifierConfig.Validate].
const (
	// MaxVerifierSecrets is how many secrets one verifier may hold.
	MaxVerifierSecrets = 10
	// MaxVerifierSecretLength is the longest verifier secret, in bytes.
	MaxVerifierSecretLength = 1024
)

// VerifierConfig says how inbound webhooks arriving by a [Source] are authenticated.
type VerifierConfig struct {
	// Scheme is one of the Scheme* constants, or the name of a verifier an
	// application registered with the ingester. Defaults to "none".
	Scheme string
	// Secrets are tried in turn; any match passes (this is how rotation works).
	Secrets []string
	// Header overrides the signature header name, for schemes that allow it
	// ("hmac-sha256" defaults to X-Kapsel-Signature).
	Header string
}

// Validate checks the rules every store, the management API and the library
// apply to a verifier (docs/ingest.md: an empty secret is never accepted):
//
//   - the scheme "none" (or empty) has no secrets;
//   - every other built-in scheme has 1–[MaxVerifierSecrets] secrets;
//   - no secret is empty or longer than [MaxVerifierSecretLength] bytes;
//   - a standard-webhooks secret is a signing secret as
//     [CheckSigningSecret] describes ("whsec_" alone is empty, so refused);
//   - Header, when set, is a valid HTTP field name, and among the built-in
//     schemes only hmac-sha256 lets it be changed.
//
// A scheme an application registered itself may have no secret at all (it
// may authenticate otherwise), but never an empty one. It returns a
// *[Error] with code E1009 wrapping [ErrInvalid]; the message never
// contains a secret.
func (v VerifierConfig) Validate() error {
	scheme := v.Scheme
	if scheme == "" {
		scheme = SchemeNone
	}
	builtin := IsBuiltinScheme(scheme)
	switch {
	case scheme == SchemeNone && len(v.Secrets) > 0:
		return invalid(CodeMalformedRequest, "verifier.secrets must be empty for scheme none")
	case builtin && scheme != SchemeNone && len(v.Secrets) == 0:
		return invalid(CodeMalformedRequest, "verifier.secrets needs at least one secret for scheme %s", scheme)
	case len(v.Secrets) > MaxVerifierSecrets:
		return invalid(CodeMalformedRequest, "verifier.secrets has more than %d secrets", MaxVerifierSecrets)
	}
	for i, s := range v.Secrets {
		if s == "" || len(s) > MaxVerifierSecretLength {
			return invalid(CodeMalformedRequest, "verifier.secrets[%d] must be 1–%d bytes", i, MaxVerifierSecretLength)
		}
		if scheme == SchemeStandardWebhooks {
			if err := CheckSigningSecret(s); err != nil {
				return invalid(CodeMalformedRequest, "verifier.secrets[%d] must be a %s secret of %d–%d bytes",
					i, SigningSecretPrefix, MinSigningKeyBytes, MaxSigningKeyBytes)
			}
		}
	}
	if v.Header != "" {
		if builtin && scheme != SchemeHMACSHA256 {
			return invalid(CodeMalformedRequest, "verifier.header applies only to scheme %s", SchemeHMACSHA256)
		}
		if !ValidHeaderName(v.Header) {
			return invalid(CodeMalformedRequest, "verifier.header is not a valid HTTP field name")
		}
	}
	return nil
}

// invalid returns a *Error with code and a formatted detail, wrapping
// ErrInvalid so that errors.Is(err, ErrInvalid) holds for every policy
// refusal.
func invalid(code Code, format string, args ...any) *Error {
	e := NewError(code, format, args...)
	e.Err = ErrInvalid
	return e
}
