package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

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
			sameTime(t, "UpdatedAt", got.UpdatedAt, Base)
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
		sameTime(t, "UpdatedAt after a rotation", got.UpdatedAt, ten.UpdatedAt) // TenantUpdate alone moves it
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

	t.Run("List", func(t *testing.T) {
		h := setup(t, newStore)
		var want []kapsel.TenantID
		for i := range 5 {
			ten := h.tenant()
			if i == 2 {
				must(t, h.s.TenantDelete(h.ctx, &kapsel.TenantDeleteParams{ID: ten.ID, Now: at(time.Minute)}), "TenantDelete")
				continue // deleted tenants are left out
			}
			want = append(want, ten.ID)
		}
		slices.Sort(want)
		var got []kapsel.TenantID
		var cursor kapsel.TenantID
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatal("TenantList pagination does not end")
			}
			list := h.listTenants(2, cursor)
			if len(list) > 2 {
				t.Fatalf("TenantList returned %d tenants with Limit 2", len(list))
			}
			if len(list) == 0 {
				break
			}
			for _, ten := range list {
				got = append(got, ten.ID)
				equal(t, "Name", ten.Name, "acme")
				if len(ten.APIKeyHash) != 32 {
					t.Fatalf("listed tenant %s has APIKeyHash %x", ten.ID, ten.APIKeyHash)
				}
				sameTime(t, "CreatedAt", ten.CreatedAt, Base)
				sameTime(t, "UpdatedAt", ten.UpdatedAt, Base)
			}
			cursor = list[len(list)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("TenantList pages = %v, want %v (id order, the deleted one left out)", got, want)
		}
		if all := h.listTenants(0, ""); !slices.Equal(tenantIDs(all), want) {
			t.Fatalf("TenantList with Limit 0 = %v, want %v (the default limit)", tenantIDs(all), want)
		}
		if rest := h.listTenants(10, want[3]); len(rest) != 0 {
			t.Fatalf("TenantList after the last id = %v, want nothing", tenantIDs(rest))
		}
	})

	t.Run("Update", func(t *testing.T) {
		h := setup(t, newStore)
		ten, other := h.tenant(), h.tenant()
		got, err := h.s.TenantUpdate(h.ctx, &kapsel.TenantUpdateParams{
			ID: ten.ID, Name: "Acme \xff Inc", RateLimit: 2.5, RateBurst: 7, Now: at(time.Hour),
		})
		must(t, err, "TenantUpdate")
		for _, got := range []*kapsel.Tenant{got, h.getTenant(ten.ID)} {
			equal(t, "ID", got.ID, ten.ID)
			equal(t, "Name", got.Name, "Acme \uFFFD Inc") // outside text, as kapsel.SafeText makes it
			equal(t, "RateLimit", got.RateLimit, 2.5)
			equal(t, "RateBurst", got.RateBurst, 7)
			sameTime(t, "CreatedAt", got.CreatedAt, Base)
			sameTime(t, "UpdatedAt", got.UpdatedAt, at(time.Hour))
			if !bytes.Equal(got.APIKeyHash, ten.APIKeyHash) {
				t.Fatalf("APIKeyHash after TenantUpdate = %x, want %x", got.APIKeyHash, ten.APIKeyHash)
			}
		}
		byKey, err := h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: ten.APIKeyHash})
		must(t, err, "TenantGetByAPIKey after TenantUpdate")
		equal(t, "Name found by the key", byKey.Name, "Acme \uFFFD Inc")

		// Back to unlimited: zero is a rate like any other.
		got, err = h.s.TenantUpdate(h.ctx, &kapsel.TenantUpdateParams{ID: ten.ID, Name: "acme", Now: at(2 * time.Hour)})
		must(t, err, "TenantUpdate to rate 0")
		if got.RateLimit != 0 || got.RateBurst != 0 {
			t.Fatalf("TenantUpdate to rate 0 = %+v", got)
		}

		for name, params := range map[string]*kapsel.TenantUpdateParams{
			"negative rate limit": {ID: ten.ID, Name: "x", RateLimit: -1, Now: at(3 * time.Hour)},
			"negative rate burst": {ID: ten.ID, Name: "x", RateBurst: -1, Now: at(3 * time.Hour)},
		} {
			_, err := h.s.TenantUpdate(h.ctx, params)
			mustIs(t, err, kapsel.ErrInvalid, "TenantUpdate with a "+name)
		}
		_, err = h.s.TenantUpdate(h.ctx, &kapsel.TenantUpdateParams{ID: kapsel.NewTenantID(), Name: "x", Now: at(3 * time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "TenantUpdate of an unknown tenant")
		// The refused updates changed nothing, and the other tenant is as
		// it was.
		got = h.getTenant(ten.ID)
		if got.Name != "acme" || got.RateLimit != 0 || got.RateBurst != 0 {
			t.Fatalf("tenant after refused updates = %+v", got)
		}
		sameTime(t, "UpdatedAt after refused updates", got.UpdatedAt, at(2*time.Hour))
		got = h.getTenant(other.ID)
		equal(t, "the other tenant's Name", got.Name, "acme")
		sameTime(t, "the other tenant's UpdatedAt", got.UpdatedAt, Base)
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

func (h *harness) listTenants(limit int, cursor kapsel.TenantID) []*kapsel.Tenant {
	h.t.Helper()
	list, err := h.s.TenantList(h.ctx, &kapsel.TenantListParams{Limit: limit, Cursor: cursor})
	must(h.t, err, "TenantList")
	return list
}

func tenantIDs(list []*kapsel.Tenant) []kapsel.TenantID {
	out := make([]kapsel.TenantID, len(list))
	for i, t := range list {
		out[i] = t.ID
	}
	return out
}
