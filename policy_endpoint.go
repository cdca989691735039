package kapsel

import "strings"

// ValidateConfig checks the rules every store applies to an endpoint it is
// asked to insert or update, so that an embedder writing through the store
// directly is held to the same rules as the management API (docs/api.md, I7,
// I8):
//
//   - URL: [CheckURL] (E1007);
//   - Headers: [CheckHeaders] (E1008);
//   - SigningSecrets: at most [MaxSigningSecrets], each one
//     [CheckSigningSecret] accepts (E1009). An endpoint with none is
//     delivered unsigned; the management API always gives it one.
//   - RetryPolicy: [RetryPolicy.Validate] once its zero fields took their
//     defaults ([RetryPolicy.WithDefaults]) (E1009);
//   - Timeout: zero (the default) or [MinAttemptTimeout]–[MaxAttemptTimeout]
//     (E1009);
//   - State, when set, one of the documented states (E1009);
//   - Subscription: [Subscription.Validate] (E1009).
//
// Only syntax is checked here: whether the URL's address may be dialled is
// the SSRF guard's decision (delivery.Guard), which the management API
// applies before it writes. Every error is a *[Error] wrapping
// [ErrInvalid], and never contains a secret.
func (e *Endpoint) ValidateConfig() error {
	if err := CheckURL(e.URL); err != nil {
		return err
	}
	if err := CheckHeaders(e.Headers); err != nil {
		return err
	}
	if err := checkSigningSecrets(e.SigningSecrets); err != nil {
		return err
	}
	if err := e.RetryPolicy.WithDefaults().Validate(); err != nil {
		return invalid(CodeMalformedRequest, "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	if e.Timeout != 0 && (e.Timeout < MinAttemptTimeout || e.Timeout > MaxAttemptTimeout) {
		return invalid(CodeMalformedRequest, "timeout must be from %s to %s", MinAttemptTimeout, MaxAttemptTimeout)
	}
	if err := e.Subscription.Validate(); err != nil {
		return err
	}
	if e.State != "" && !e.State.Valid() {
		return invalid(CodeMalformedRequest, "state %q is not one of active, paused, disabled", clip(string(e.State), 64))
	}
	return nil
}

// checkSigningSecrets applies the signing-secret part of ValidateConfig.
func checkSigningSecrets(secrets []SigningSecret) error {
	if len(secrets) > MaxSigningSecrets {
		return invalid(CodeMalformedRequest, "an endpoint keeps at most %d signing secrets, got %d", MaxSigningSecrets, len(secrets))
	}
	for i, s := range secrets {
		if err := CheckSigningSecret(s.Secret); err != nil {
			return invalid(CodeMalformedRequest, "signing_secrets[%d]: %s", i, err.(*Error).Detail)
		}
	}
	return nil
}
