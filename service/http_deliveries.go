package service

import (
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// deliveryJSON is a delivery on the wire.
type deliveryJSON struct {
	ID         kapsel.DeliveryID `json:"id"`
	EventID    kapsel.EventID    `json:"event_id"`
	EndpointID kapsel.EndpointID `json:"endpoint_id"`
	Status     string            `json:"status"`
	Attempts   int               `json:"attempts"`
	// NextAttemptAt is set only while pending; a delivering one has a
	// lease instead.
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

func toDeliveryJSON(d *kapsel.Delivery) deliveryJSON {
	out := deliveryJSON{
		ID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID, Status: string(d.Status), Attempts: d.Attempts,
		LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(), DeliveredAt: timePtr(d.DeliveredAt),
	}
	if d.Status == kapsel.DeliveryPending {
		out.NextAttemptAt = timePtr(d.NextAttemptAt)
	}
	return out
}

func deliveryID(r *http.Request) (kapsel.DeliveryID, error) {
	return pathID(r, "delivery", kapsel.ParseDeliveryID)
}

// httpListDeliveries: GET /v1/deliveries?endpoint_id=&event_id=&status=&limit=&cursor=.
func (s *Service) httpListDeliveries(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := DeliveryFilter{
		EndpointID: kapsel.EndpointID(q.Get("endpoint_id")), EventID: kapsel.EventID(q.Get("event_id")),
		Status: kapsel.DeliveryStatus(q.Get("status")), ListOptions: o,
	}
	p, err := s.ListDeliveries(r.Context(), tenantOf(r), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toDeliveryJSON))
	return nil
}

// httpGetDelivery: GET /v1/deliveries/{id}.
func (s *Service) httpGetDelivery(w http.ResponseWriter, r *http.Request) error {
	id, err := deliveryID(r)
	if err != nil {
		return err
	}
	d, err := s.GetDelivery(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDeliveryJSON(d))
	return nil
}

// httpListDeliveryAttempts: GET /v1/deliveries/{id}/attempts[?include=response_body].
func (s *Service) httpListDeliveryAttempts(w http.ResponseWriter, r *http.Request) error {
	id, err := deliveryID(r)
	if err != nil {
		return err
	}
	o, err := attemptListOptions(r)
	if err != nil {
		return err
	}
	p, err := s.ListDeliveryAttempts(r.Context(), tenantOf(r), id, o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toAttemptJSON))
	return nil
}

// httpRetryDelivery: POST /v1/deliveries/{id}/retry → 202 with the
// delivery, now pending.
func (s *Service) httpRetryDelivery(w http.ResponseWriter, r *http.Request) error {
	id, err := deliveryID(r)
	if err != nil {
		return err
	}
	d, err := s.RetryDelivery(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
	return nil
}
