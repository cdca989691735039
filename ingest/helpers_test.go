package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// hmacHex signs body as the github and hmac-sha256 schemes expect.
func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}
