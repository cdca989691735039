package storetest

import (
	"bytes"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func testTenants(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("Ping", func(t *testing.T) {
		h := setup(t, newStore)
		must(t, h.s.Ping(h.ctx), "Ping")
	})

	t.Run("InsertGet", func(t *testing.T) {
		h := setup(t, newStore)
		key := hash([]byte("key"))
		ten, err := h.s.TenantInsert(h.ctx, &kapsel.TenantInsertParams{
			Name: "Acme Corp", APIKeyHash: key, RateLimit: 12.5, RateBurst: 40, Now: Base,
		})
		must(t, err, "TenantInsert")
		_, err = kapsel.ParseTenantID(ten.ID.String())
		must(t, err, "ParseTenantID of the new id")
		for _, got := range []*kapsel.Tenant{ten, h.getTenant(ten.ID)} {
			equal(t, "ID", got.ID, ten.ID)
			equal(t, "Name", got.Name, "Acme Corp")
			equal(t, "RateLimit", got.RateLimit, 12.5)
			equal(t, "RateBurst", got.RateBurst, 40)
			sameTime(t, "CreatedAt", got.CreatedAt, Base)
			if !bytes.Equal(got.APIKeyHash, key) {
				t.Fatalf("APIKeyHash = %x, want %x", got.APIKeyHash, key)
			}
		}
		other := h.tenant()
		if other.ID == ten.ID {
			t.Fatal("two tenants got the same id")
		}
	})

	t.Run("GetUnknown", func(t *testing.T) {
		h := setup(t, newStore)
		_, err := h.s.TenantGet(h.ctx, &kapsel.TenantGetParams{ID: kapsel.NewTenantID()})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGet of an unknown id")
	})

	t.Run("DuplicateAPIKey", func(t *testing.T) {
		h := setup(t, newStore)
		key := hash([]byte("shared"))
		_, err := h.s.TenantInsert(h.ctx, &kapsel.TenantInsertParams{Name: "a", APIKeyHash: key, Now: Base})
		must(t, err, "first TenantInsert")
		_, err = h.s.TenantInsert(h.ctx, &kapsel.TenantInsertParams{Name: "b", APIKeyHash: key, Now: Base})
		mustIs(t, err, kapsel.ErrDuplicate, "second TenantInsert with the same key hash")
	})

	t.Run("InsertInvalid", func(t *testing.T) {
		h := setup(t, newStore)
		for name, params := range map[string]*kapsel.TenantInsertParams{
			"no api key hash":     {Name: "a", Now: Base},
			"negative rate limit": {Name: "a", APIKeyHash: hash([]byte("k1")), RateLimit: -1, Now: Base},
		} {
			_, err := h.s.TenantInsert(h.ctx, params)
			mustIs(t, err, kapsel.ErrInvalid, "TenantInsert with "+name)
		}
		// Nothing was written: the key of the refused tenant is still free.
		_, err := h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: hash([]byte("k1"))})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGetByAPIKey after a refused insert")
	})

	t.Run("GetByAPIKey", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		for _, want := range []*kapsel.Tenant{a, b} {
			got, err := h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: want.APIKeyHash})
			must(t, err, "TenantGetByAPIKey")
			equal(t, "tenant id", got.ID, want.ID)
		}
		_, err := h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: hash([]byte("nobody"))})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGetByAPIKey of an unknown hash")
	})

	t.Run("RotateAPIKey", func(t *testing.T) {
		h := setup(t, newStore)
		ten, other := h.tenant(), h.tenant()
		old := append([]byte{}, ten.APIKeyHash...)
		next := hash([]byte("rotated"))
		got, err := h.s.TenantRotateAPIKey(h.ctx, &kapsel.TenantRotateAPIKeyParams{ID: ten.ID, APIKeyHash: next})
		must(t, err, "TenantRotateAPIKey")
		equal(t, "rotated tenant id", got.ID, ten.ID)
		if !bytes.Equal(got.APIKeyHash, next) {
			t.Fatalf("APIKeyHash after rotation = %x, want %x", got.APIKeyHash, next)
		}
		byNew, err := h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: next})
		must(t, err, "TenantGetByAPIKey of the new key")
		equal(t, "tenant found by the new key", byNew.ID, ten.ID)
		_, err = h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: old})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGetByAPIKey of the rotated-out key")

		_, err = h.s.TenantRotateAPIKey(h.ctx, &kapsel.TenantRotateAPIKeyParams{ID: ten.ID, APIKeyHash: other.APIKeyHash})
		mustIs(t, err, kapsel.ErrDuplicate, "TenantRotateAPIKey to another tenant's key")
		_, err = h.s.TenantRotateAPIKey(h.ctx, &kapsel.TenantRotateAPIKeyParams{ID: ten.ID})
		mustIs(t, err, kapsel.ErrInvalid, "TenantRotateAPIKey without a hash")
		_, err = h.s.TenantRotateAPIKey(h.ctx, &kapsel.TenantRotateAPIKeyParams{ID: kapsel.NewTenantID(), APIKeyHash: hash([]byte("x"))})
		mustIs(t, err, kapsel.ErrNotFound, "TenantRotateAPIKey of an unknown tenant")
		// The refused rotations changed nothing.
		if got := h.getTenant(ten.ID); !bytes.Equal(got.APIKeyHash, next) {
			t.Fatalf("APIKeyHash after refused rotations = %x, want %x", got.APIKeyHash, next)
		}
		if got := h.getTenant(other.ID); !bytes.Equal(got.APIKeyHash, other.APIKeyHash) {
			t.Fatal("a refused rotation changed the other tenant's key")
		}
	})

	t.Run("ReturnedValuesAreCopies", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		want := append([]byte{}, ten.APIKeyHash...)
		ten.APIKeyHash[0] ^= 0xff
		ten.Name = "changed"
		got := h.getTenant(ten.ID)
		if !bytes.Equal(got.APIKeyHash, want) || got.Name != "acme" {
			t.Fatalf("changing a returned tenant changed the stored one: %+v", got)
		}
	})
}

func (h *harness) getTenant(id kapsel.TenantID) *kapsel.Tenant {
	h.t.Helper()
	ten, err := h.s.TenantGet(h.ctx, &kapsel.TenantGetParams{ID: id})
	must(h.t, err, "TenantGet")
	return ten
}
