package pgstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	for _, in := range []*Config{nil, {}} {
		c, err := in.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if c.Logger == nil || c.ListenReconnectMin != DefaultListenReconnectMin ||
			c.ListenReconnectMax != DefaultListenReconnectMax || c.ListenPingInterval != DefaultListenPingInterval {
			t.Fatalf("defaults of %v = %+v", in, c)
		}
	}
	c, err := (&Config{ListenReconnectMin: time.Second, ListenReconnectMax: time.Minute}).withDefaults()
	if err != nil || c.ListenReconnectMin != time.Second || c.ListenReconnectMax != time.Minute {
		t.Fatalf("set values were not kept: %+v, %v", c, err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative reconnect", Config{ListenReconnectMin: -time.Second}, "ListenReconnectMin"},
		{"max below min", Config{ListenReconnectMin: time.Minute, ListenReconnectMax: time.Second}, "ListenReconnectMax"},
		{"negative ping", Config{ListenPingInterval: -time.Second}, "ListenPingInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if !errors.Is(err, kapsel.ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tt.field)
			}
			if _, err := New(nil, nil); !errors.Is(err, kapsel.ErrInvalid) {
				t.Fatalf("New(nil pool) = %v, want ErrInvalid", err)
			}
		})
	}
}
