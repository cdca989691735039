package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// fullSource is a source of ten with every configuration field set.
func fullSource(ten *kapsel.Tenant) *kapsel.Source {
	return &kapsel.Source{
		TenantID: ten.ID,
		Name:     "payments",
		Verifier: kapsel.VerifierConfig{
			Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s3cret-old", "s3cret-new"}, Header: "X-Payments-Signature",
		},
		EventTypeFrom:      "header:X-Event-Type",
		IdempotencyKeyFrom: "json:/data/id",
	}
}

// sameSourceConfig requires the configuration fields of got and want to
// match.
func sameSourceConfig(t *testing.T, got, want *kapsel.Source) {
	t.Helper()
	equal(t, "Name", got.Name, want.Name)
	equal(t, "Verifier.Scheme", got.Verifier.Scheme, want.Verifier.Scheme)
	equal(t, "Verifier.Header", got.Verifier.Header, want.Verifier.Header)
	if !slices.Equal(got.Verifier.Secrets, want.Verifier.Secrets) {
		t.Fatalf("Verifier.Secrets = %q, want %q", got.Verifier.Secrets, want.Verifier.Secrets)
	}
	equal(t, "EventTypeFrom", got.EventTypeFrom, want.EventTypeFrom)
	equal(t, "IdempotencyKeyFrom", got.IdempotencyKeyFrom, want.IdempotencyKeyFrom)
}

// badSourceConfigs are source configurations kapsel.Source.ValidateConfig
// refuses (all with E1009): the verifier and field-reference rules the
// management API also applies.
func badSourceConfigs() []struct {
	name   string
	change func(s *kapsel.Source)
} {
	verifier := func(scheme string, secrets ...string) func(*kapsel.Source) {
		return func(s *kapsel.Source) { s.Verifier = kapsel.VerifierConfig{Scheme: scheme, Secrets: secrets} }
	}
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	return []struct {
		name   string
		change func(s *kapsel.Source)
	}{
		{"empty hmac-sha256 secret", verifier(kapsel.SchemeHMACSHA256, "")},
		{"empty github secret beside a good one", verifier(kapsel.SchemeGitHub, "s3cret", "")},
		{"empty standard-webhooks key", verifier(kapsel.SchemeStandardWebhooks, "whsec_")},
		{"standard-webhooks secret without prefix", verifier(kapsel.SchemeStandardWebhooks, good[len("whsec_"):])},
		{"built-in scheme without secret", verifier(kapsel.SchemeStripe)},
		{"secret with scheme none", verifier(kapsel.SchemeNone, "s3cret")},
		{"empty secret of a registered scheme", verifier("my-scheme", "")},
		{"header for github", func(s *kapsel.Source) { s.Verifier.Scheme, s.Verifier.Header = kapsel.SchemeGitHub, "X-Sig" }},
		{"invalid header name", func(s *kapsel.Source) { s.Verifier.Header = "X Sig" }},
		{"event type from nowhere", func(s *kapsel.Source) { s.EventTypeFrom = "body:type" }},
		{"event type from an empty header name", func(s *kapsel.Source) { s.EventTypeFrom = "header:" }},
		{"idempotency key from a relative pointer", func(s *kapsel.Source) { s.IdempotencyKeyFrom = "json:data/id" }},
		{"idempotency key from a pointer with a bad escape", func(s *kapsel.Source) { s.IdempotencyKeyFrom = "json:/a~2" }},
		{"unknown state", func(s *kapsel.Source) { s.State = "sleeping" }},
	}
}

func (h *harness) getSource(id kapsel.SourceID, tenant kapsel.TenantID) *kapsel.Source {
	h.t.Helper()
	src, err := h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: id, TenantID: tenant})
	must(h.t, err, "SourceGet")
	return src
}

func (h *harness) listSources(tenant kapsel.TenantID, limit int, cursor kapsel.SourceID) []*kapsel.Source {
	h.t.Helper()
	list, err := h.s.SourceList(h.ctx, &kapsel.SourceListParams{TenantID: tenant, Limit: limit, Cursor: cursor})
	must(h.t, err, "SourceList")
	return list
}

func sourceIDs(list []*kapsel.Source) []kapsel.SourceID {
	out := make([]kapsel.SourceID, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

func testSources(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("InsertGet", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		want := fullSource(ten)
		src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: want, Now: at(time.Minute)})
		must(t, err, "SourceInsert")
		_, err = kapsel.ParseSourceID(src.ID.String())
		must(t, err, "ParseSourceID of the new id")
		for _, got := range []*kapsel.Source{src, h.getSource(src.ID, ""), h.getSource(src.ID, ten.ID)} {
			equal(t, "ID", got.ID, src.ID)
			equal(t, "TenantID", got.TenantID, ten.ID)
			equal(t, "State (empty means active)", got.State, kapsel.SourceActive)
			sameTime(t, "CreatedAt", got.CreatedAt, at(time.Minute))
			sameTime(t, "UpdatedAt", got.UpdatedAt, at(time.Minute))
			sameSourceConfig(t, got, want)
		}
		if other := h.source(ten); other.ID == src.ID {
			t.Fatal("two sources got the same id")
		}

		paused := fullSource(ten)
		paused.State = kapsel.SourcePaused
		got, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: paused, Now: Base})
		must(t, err, "SourceInsert of a paused source")
		equal(t, "State", h.getSource(got.ID, ten.ID).State, kapsel.SourcePaused)

		// A scheme an application registered may have no secret.
		custom := fullSource(ten)
		custom.Verifier = kapsel.VerifierConfig{Scheme: "my-scheme"}
		got, err = h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: custom, Now: Base})
		must(t, err, "SourceInsert with a registered scheme and no secret")
		sameSourceConfig(t, h.getSource(got.ID, ten.ID), custom)

		_, err = h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: fullSource(&kapsel.Tenant{ID: kapsel.NewTenantID()}), Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "SourceInsert for an unknown tenant")
	})

	// The 0.1 → 0.2 migration keeps a 0.1 endpoint's ingest URL by giving
	// its source kapsel.LegacySourceID: a given ID is kept, and a taken one
	// (live or deleted) is refused.
	t.Run("InsertWithID", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		legacy := kapsel.LegacySourceID(kapsel.NewEndpointID())
		in := fullSource(a)
		in.ID = legacy
		src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: in, Now: Base})
		must(t, err, "SourceInsert with an ID")
		equal(t, "ID", src.ID, legacy)
		equal(t, "SourceGet of the given ID", h.getSource(legacy, a.ID).ID, legacy)

		for _, ten := range []*kapsel.Tenant{a, b} {
			again := fullSource(ten)
			again.ID, again.Name = legacy, "again"
			_, err = h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: again, Now: at(time.Second)})
			mustIs(t, err, kapsel.ErrDuplicate, "SourceInsert with a taken ID")
		}
		equal(t, "Name after refused inserts", h.getSource(legacy, "").Name, "payments")
		equal(t, "TenantID after refused inserts", h.getSource(legacy, "").TenantID, a.ID)

		must(t, h.s.SourceDelete(h.ctx, &kapsel.SourceDeleteParams{ID: legacy, TenantID: a.ID, Now: at(time.Minute)}), "SourceDelete")
		again := fullSource(a)
		again.ID = legacy
		_, err = h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: again, Now: at(2 * time.Minute)})
		mustIs(t, err, kapsel.ErrDuplicate, "SourceInsert with a deleted source's ID")
		_, err = h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: legacy})
		mustIs(t, err, kapsel.ErrNotFound, "SourceGet of the deleted source after a refused insert")
	})

	t.Run("InsertRefusesInvalidConfig", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		for _, bc := range badSourceConfigs() {
			s := fullSource(ten)
			bc.change(s)
			_, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: s, Now: Base})
			mustRefuse(t, err, kapsel.CodeMalformedRequest, "SourceInsert with "+bc.name)
		}
		if list := h.listSources(ten.ID, 0, ""); len(list) != 0 {
			t.Fatalf("refused inserts left sources %v", sourceIDs(list))
		}
	})

	t.Run("GetScoping", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		src := h.source(a)
		equal(t, "own tenant", h.getSource(src.ID, a.ID).ID, src.ID)
		equal(t, "no tenant check", h.getSource(src.ID, "").ID, src.ID)
		_, err := h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: src.ID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "SourceGet by another tenant")
		_, err = h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: kapsel.NewSourceID()})
		mustIs(t, err, kapsel.ErrNotFound, "SourceGet of an unknown id")
		// An endpoint's id with the source prefix is not a source unless
		// a migration made it one.
		_, err = h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: kapsel.LegacySourceID(h.endpoint(a).ID)})
		mustIs(t, err, kapsel.ErrNotFound, "SourceGet of the legacy id of a 0.2 endpoint")
	})

	t.Run("List", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		var want []kapsel.SourceID
		for i := range 7 {
			src := h.source(a)
			h.source(b)
			if i == 3 {
				must(t, h.s.SourceDelete(h.ctx, &kapsel.SourceDeleteParams{ID: src.ID, Now: Base}), "SourceDelete")
				continue
			}
			want = append(want, src.ID)
		}
		slices.Sort(want)
		var got []kapsel.SourceID
		var cursor kapsel.SourceID
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("SourceList pagination does not end")
			}
			list := h.listSources(a.ID, 2, cursor)
			if len(list) > 2 {
				t.Fatalf("page of %d sources with Limit 2", len(list))
			}
			if len(list) == 0 {
				break
			}
			for _, s := range list {
				equal(t, "TenantID of a listed source", s.TenantID, a.ID)
				got = append(got, s.ID)
			}
			cursor = list[len(list)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged SourceList = %v, want %v (id order, deleted left out)", got, want)
		}
		if list := h.listSources(kapsel.NewTenantID(), 0, ""); len(list) != 0 {
			t.Fatalf("SourceList of an unknown tenant = %v", sourceIDs(list))
		}
	})

	t.Run("Update", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		src := h.source(a)
		src, err := h.s.SourceSetState(h.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: kapsel.SourcePaused, Now: at(time.Minute)})
		must(t, err, "SourceSetState")

		want := fullSource(b) // TenantID, like the fields below, ignored
		want.ID, want.State, want.CreatedAt = kapsel.NewSourceID(), kapsel.SourceActive, at(time.Hour)
		var calls atomic.Int32
		update := func(s *kapsel.Source) error {
			calls.Add(1)
			*s = *want.Clone()
			return nil
		}
		deleted := h.source(a)
		must(t, h.s.SourceDelete(h.ctx, &kapsel.SourceDeleteParams{ID: deleted.ID, TenantID: a.ID, Now: Base}), "SourceDelete")
		for _, p := range []kapsel.SourceUpdateParams{
			{ID: src.ID, TenantID: b.ID},     // another tenant's
			{ID: kapsel.NewSourceID()},       // unknown
			{ID: deleted.ID, TenantID: a.ID}, // deleted
		} {
			p.Update, p.Now = update, at(2*time.Minute)
			_, err := h.s.SourceUpdate(h.ctx, &p)
			mustIs(t, err, kapsel.ErrNotFound, "SourceUpdate of a source not visible to TenantID")
		}
		equal(t, "Update calls for sources not found", calls.Load(), 0)
		_, err = h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{ID: src.ID, TenantID: a.ID, Now: at(2 * time.Minute)})
		mustIs(t, err, kapsel.ErrInvalid, "SourceUpdate without Update")

		var seen *kapsel.Source
		got, err := h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{
			ID: src.ID, TenantID: a.ID, Now: at(3 * time.Minute),
			Update: func(s *kapsel.Source) error {
				seen = s.Clone()
				return update(s)
			},
		})
		must(t, err, "SourceUpdate")
		equal(t, "Update calls", calls.Load(), 1)
		// Update is given the stored source, whole.
		equal(t, "ID given to Update", seen.ID, src.ID)
		equal(t, "TenantID given to Update", seen.TenantID, a.ID)
		equal(t, "State given to Update", seen.State, kapsel.SourcePaused)
		sameTime(t, "UpdatedAt given to Update", seen.UpdatedAt, at(time.Minute))
		sameSourceConfig(t, seen, src)

		for _, got := range []*kapsel.Source{got, h.getSource(src.ID, a.ID)} {
			sameSourceConfig(t, got, want)
			equal(t, "ID kept", got.ID, src.ID)
			equal(t, "State kept", got.State, kapsel.SourcePaused)
			equal(t, "TenantID kept", got.TenantID, a.ID)
			sameTime(t, "CreatedAt kept", got.CreatedAt, Base)
			sameTime(t, "UpdatedAt", got.UpdatedAt, at(3*time.Minute))
		}
		_, err = h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: want.ID})
		mustIs(t, err, kapsel.ErrNotFound, "SourceGet of the id Update set")
	})

	// An error of Update comes back as it is and writes nothing, even what
	// Update changed in place before failing; a refused result writes
	// nothing either.
	t.Run("UpdateErrorWritesNothing", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: fullSource(ten), Now: Base})
		must(t, err, "SourceInsert")
		refused := errors.New("refused by the caller")
		_, err = h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{
			ID: src.ID, TenantID: ten.ID, Now: at(time.Minute),
			Update: func(s *kapsel.Source) error {
				s.Name, s.EventTypeFrom = "changed", "header:X-Changed"
				s.Verifier.Secrets[0] = "changed"
				return refused
			},
		})
		if err != refused { // the very error, not one wrapping it
			t.Fatalf("SourceUpdate whose Update fails: got error %v, want Update's error unchanged", err)
		}
		for _, bc := range badSourceConfigs() {
			if strings.Contains(bc.name, "state") {
				continue // SourceUpdate does not write the state
			}
			_, err := h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{
				ID: src.ID, TenantID: ten.ID, Now: at(time.Minute),
				Update: func(s *kapsel.Source) error { s.Name = "changed"; bc.change(s); return nil },
			})
			mustRefuse(t, err, kapsel.CodeMalformedRequest, "SourceUpdate with "+bc.name)
		}
		got := h.getSource(src.ID, ten.ID)
		sameSourceConfig(t, got, fullSource(ten))
		sameTime(t, "UpdatedAt after failed updates", got.UpdatedAt, Base)
	})

	// Two updates of different fields at once: the first holds the source
	// until the second has started (and, if the store lets it, completed);
	// both changes must survive, the second computed from what the first
	// wrote (I8 of docs/guarantees.md: a rotation of the verifier's secrets
	// is never undone by a concurrent write).
	t.Run("UpdateConcurrently", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: fullSource(ten), Now: Base})
		must(t, err, "SourceInsert")
		var (
			firstCalls, secondCalls atomic.Int32
			entered                 = make(chan struct{})
			secondStarted           = make(chan struct{})
			firstDone, secondDone   = make(chan struct{}), make(chan struct{})
			errs                    = make(chan error, 2)
			wg                      sync.WaitGroup
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(firstDone)
			_, err := h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{
				ID: src.ID, TenantID: ten.ID, Now: at(time.Minute),
				Update: func(s *kapsel.Source) error {
					if firstCalls.Add(1) == 1 {
						close(entered)
						<-secondStarted
						select {
						case <-secondDone:
						case <-time.After(serialisedWait):
						}
					}
					s.Name = "renamed"
					return nil
				},
			})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			defer close(secondDone)
			select {
			case <-entered:
			case <-firstDone:
			}
			close(secondStarted)
			_, err := h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{
				ID: src.ID, TenantID: ten.ID, Now: at(2 * time.Minute),
				Update: func(s *kapsel.Source) error {
					secondCalls.Add(1)
					s.Verifier.Secrets = []string{"rotated"}
					return nil
				},
			})
			errs <- err
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err, "concurrent SourceUpdate")
		}
		equal(t, "calls of the first Update", firstCalls.Load(), 1)
		equal(t, "calls of the second Update", secondCalls.Load(), 1)
		got := h.getSource(src.ID, ten.ID)
		if !slices.Equal(got.Verifier.Secrets, []string{"rotated"}) {
			t.Fatalf("Verifier.Secrets after concurrent updates = %q, want the second update's: the first wrote back what it had read", got.Verifier.Secrets)
		}
		equal(t, "Name after concurrent updates", got.Name, "renamed")
	})

	t.Run("SetState", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		src := h.source(a)
		for i, state := range []kapsel.SourceState{kapsel.SourcePaused, kapsel.SourcePaused, kapsel.SourceActive} {
			now := at(time.Duration(i+1) * time.Minute)
			got, err := h.s.SourceSetState(h.ctx, &kapsel.SourceSetStateParams{ID: src.ID, TenantID: a.ID, State: state, Now: now})
			must(t, err, "SourceSetState")
			for _, got := range []*kapsel.Source{got, h.getSource(src.ID, "")} {
				equal(t, "State", got.State, state)
				sameTime(t, "UpdatedAt", got.UpdatedAt, now)
				equal(t, "Name kept", got.Name, src.Name)
			}
		}
		_, err := h.s.SourceSetState(h.ctx, &kapsel.SourceSetStateParams{ID: src.ID, TenantID: b.ID, State: kapsel.SourcePaused, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "SourceSetState by another tenant")
		_, err = h.s.SourceSetState(h.ctx, &kapsel.SourceSetStateParams{ID: kapsel.NewSourceID(), State: kapsel.SourcePaused, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "SourceSetState of an unknown source")
		_, err = h.s.SourceSetState(h.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: "sleeping", Now: Base})
		mustIs(t, err, kapsel.ErrInvalid, "SourceSetState to an unknown state")
		equal(t, "State after refused changes", h.getSource(src.ID, "").State, kapsel.SourceActive)
	})

	t.Run("SoftDelete", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep := h.endpoint(a)
		src, keep := h.source(a), h.source(a)
		ev := h.insertNew(Base, ingested(src, "k", []byte(`{}`)))[0]

		err := h.s.SourceDelete(h.ctx, &kapsel.SourceDeleteParams{ID: src.ID, TenantID: b.ID, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "SourceDelete by another tenant")
		h.getSource(src.ID, a.ID)

		must(t, h.s.SourceDelete(h.ctx, &kapsel.SourceDeleteParams{ID: src.ID, TenantID: a.ID, Now: at(time.Minute)}), "SourceDelete")
		_, err = h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: src.ID})
		mustIs(t, err, kapsel.ErrNotFound, "SourceGet after delete")
		err = h.s.SourceDelete(h.ctx, &kapsel.SourceDeleteParams{ID: src.ID, Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "second SourceDelete")
		_, err = h.s.SourceSetState(h.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: kapsel.SourcePaused, Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "SourceSetState after delete")
		if list := h.listSources(a.ID, 0, ""); len(list) != 1 || list[0].ID != keep.ID {
			t.Fatalf("SourceList after delete = %v, want only %s", sourceIDs(list), keep.ID)
		}
		// Its events stay as they are: readable, listed, delivered.
		got := h.getEvent(ev.ID)
		equal(t, "SourceID of the deleted source's event", got.SourceID, src.ID)
		summary(t, "deleted source's event", got.Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
		if list := h.listEvents(kapsel.EventListParams{TenantID: a.ID, SourceID: src.ID}); len(list) != 1 || list[0].ID != ev.ID {
			t.Fatalf("EventList of the deleted source = %v, want %s", eventIDs(list), ev.ID)
		}
		h.claimOne(h.deliveryOf(ev.ID, ep.ID).ID, time.Minute, at(time.Minute))
	})

	t.Run("ValuesAreCopies", func(t *testing.T) {
		h := setup(t, newStore)
		in := fullSource(h.tenant())
		src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: in, Now: Base})
		must(t, err, "SourceInsert")
		want := fullSource(&kapsel.Tenant{ID: in.TenantID})
		in.Verifier.Secrets[0], src.Verifier.Secrets[1] = "x", "y"
		got := h.getSource(src.ID, "")
		sameSourceConfig(t, got, want)
		got.Verifier.Secrets[0] = "z"
		sameSourceConfig(t, h.getSource(src.ID, ""), want)
		list := h.listSources(in.TenantID, 0, "")
		list[0].Verifier.Secrets[0] = "z"
		sameSourceConfig(t, h.getSource(src.ID, ""), want)
	})
}
