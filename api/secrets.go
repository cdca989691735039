package api

import (
	"github.com/kapsel-dev/kapsel"
)

// SigningSecretPrefix starts every signing secret (Standard Webhooks form):
// kapsel.SigningSecretPrefix, the one format the dispatcher signs with.
const SigningSecretPrefix = kapsel.SigningSecretPrefix

// NewSigningSecret returns a new random "whsec_<base64>" secret
// (kapsel.NewSigningSecret).
func NewSigningSecret() string { return kapsel.NewSigningSecret() }

// checkSigningSecret validates a caller-supplied signing secret with
// kapsel.CheckSigningSecret, answering E1009. The error never quotes the
// secret.
func checkSigningSecret(s string) error {
	if err := kapsel.CheckSigningSecret(s); err != nil {
		return badRequest("signing_secret: %s", detail(err))
	}
	return nil
}

// detail is the caller-safe message of a policy error: a *kapsel.Error's
// Detail, else its text.
func detail(err error) string {
	if ke, ok := err.(*kapsel.Error); ok {
		return ke.Detail
	}
	return err.Error()
}
