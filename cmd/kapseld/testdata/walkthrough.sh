#!/usr/bin/env bash
# The curl walk-through of docs/api.md and the README, run against a kapseld
# started with:
#
#   KAPSEL_ADMIN_TOKEN=dev-admin-token KAPSEL_ALLOW_PRIVATE_DESTINATIONS=true go run ./cmd/kapseld
#
# (the private-destinations switch lets kapseld deliver to itself on
# 127.0.0.1 below). Needs curl, jq and openssl. TestWalkthrough runs it.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8080}
ADMIN=${KAPSEL_ADMIN_TOKEN:-dev-admin-token}
api() { curl -sf "$@" -H "Authorization: Bearer $KEY"; }

# 1. A tenant (admin token). Its API key is shown this once.
KEY=$(curl -sf -X POST "$BASE/v1/tenants" -H "Authorization: Bearer $ADMIN" \
  -d '{"name":"acme"}' | jq -r .api_key)

# 2. A receiver to deliver to: here kapseld itself, through a source that
#    checks Standard Webhooks signatures with a secret we choose, and an
#    endpoint subscribed to it that stays paused, so what the receiver
#    accepts waits there for us to read.
SECRET="whsec_$(openssl rand -base64 32)"
RECEIVER=$(api -X POST "$BASE/v1/sources" \
  -d "{\"name\":\"receiver\",\"verifier\":{\"scheme\":\"standard-webhooks\",\"secrets\":[\"$SECRET\"]}}")
RECEIVER_ID=$(jq -r .id <<<"$RECEIVER")
INBOX=$(api -X POST "$BASE/v1/endpoints" \
  -d "{\"name\":\"inbox\",\"url\":\"https://example.com/unused\",\"source_ids\":[\"$RECEIVER_ID\"]}" | jq -r .id)
api -X POST "$BASE/v1/endpoints/$INBOX/pause" > /dev/null

# 3. The source GitHub sends to: it checks GitHub signatures. Its ingest URL
#    is what you give GitHub.
GH=$(api -X POST "$BASE/v1/sources" \
  -d '{"name":"github","verifier":{"scheme":"github","secrets":["gh-secret"]}}')
GH_ID=$(jq -r .id <<<"$GH")
GH_URL=$(jq -r .ingest_url <<<"$GH")   # /ingest/src_…
jq -e '.verifier == {"scheme":"github","header":"","secret_count":1}' <<<"$GH" > /dev/null

# 4. Two endpoints subscribed to it: "ci" takes pull requests and delivers
#    them to the receiver, signing with $SECRET; "archive" takes everything
#    GitHub sends, and is paused for now.
CI=$(api -X POST "$BASE/v1/endpoints" \
  -d "{\"name\":\"ci\",\"url\":\"$BASE$(jq -r .ingest_url <<<"$RECEIVER")\",
       \"source_ids\":[\"$GH_ID\"],\"event_types\":[\"pull_request\"],\"signing_secret\":\"$SECRET\"}" | jq -r .id)
ARCHIVE=$(api -X POST "$BASE/v1/endpoints" \
  -d "{\"name\":\"archive\",\"url\":\"https://example.com/archive\",\"source_ids\":[\"$GH_ID\"]}" | jq -r .id)
api -X POST "$BASE/v1/endpoints/$ARCHIVE/pause" > /dev/null

# 5. A webhook signed as GitHub signs it: one event, two deliveries.
BODY='{"action":"opened","number":1}'
SIG="sha256=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac gh-secret | sed 's/^.* //')"
OUT=$(curl -sf -X POST "$BASE$GH_URL" -H "Content-Type: application/json" -H "X-GitHub-Event: pull_request" \
  -H "X-Hub-Signature-256: $SIG" -H "X-GitHub-Delivery: delivery-1" -d "$BODY")
EVT=$(jq -r .id <<<"$OUT")
jq -e '.deliveries == 2 and .duplicate == false' <<<"$OUT" > /dev/null
echo "accepted $EVT"

# The same delivery id again is a duplicate (200, same id); a bad signature is 401 E1001.
curl -s -X POST "$BASE$GH_URL" -H "X-Hub-Signature-256: $SIG" -H "X-GitHub-Delivery: delivery-1" \
  -d "$BODY" | jq -e ".duplicate == true and .id == \"$EVT\"" > /dev/null
curl -s -X POST "$BASE$GH_URL" -H "X-Hub-Signature-256: sha256=00" -d "$BODY" | jq -e '.code == "E1001"' > /dev/null

# 6. Delivered to ci within milliseconds; archive's delivery waits.
for _ in $(seq 100); do
  DELIVERED=$(api "$BASE/v1/events/$EVT" | jq -r .deliveries.delivered)
  [ "$DELIVERED" = 1 ] && break
  sleep 0.1
done
api "$BASE/v1/events/$EVT" \
  | jq -e '.type == "pull_request" and .deliveries == {"total":2,"pending":1,"delivering":0,"delivered":1,"failed":0}' > /dev/null
echo "event $EVT: delivered to ci, waiting for archive"
DLV=$(api "$BASE/v1/deliveries?event_id=$EVT&endpoint_id=$CI" | jq -r '.data[0].id')
api "$BASE/v1/deliveries/$DLV/attempts" \
  | jq -e '.data[0].status_code == 202 and .data[0].trigger == "scheduled"' > /dev/null
api "$BASE/v1/deliveries?endpoint_id=$ARCHIVE&status=pending" | jq -e '.data | length == 1' > /dev/null

# The receiver accepted it only because its Standard Webhooks signature
# verified; it kept the body byte for byte.
GOT=$(api "$BASE/v1/events?source_id=$RECEIVER_ID" | jq -r '.data[0].id')
api "$BASE/v1/events/$GOT?include=body" | jq -e --arg body "$BODY" '.body == $body' > /dev/null
echo "receiver verified and stored $GOT"

# 7. The application sends an event itself: to the endpoints subscribed to
#    its type, or, as here, to the ones it names.
api -X POST "$BASE/v1/events" \
  -d "{\"type\":\"deploy.finished\",\"payload\":{\"ok\":true},\"endpoint_ids\":[\"$CI\"]}" \
  | jq -e '.deliveries == 1' > /dev/null

# 8. Health, a manual retry (same webhook-id), secret rotation, pause/resume.
api "$BASE/v1/endpoints/$CI/health" | jq -e '.success_rate == 1' > /dev/null
api -X POST "$BASE/v1/events/$EVT/retry" | jq -e '.count == 1' > /dev/null
api -X POST "$BASE/v1/endpoints/$CI/rotate-signing-secret" \
  -d '{"grace_period_s":3600}' | jq -e '.signing_secret | startswith("whsec_")' > /dev/null
api -X POST "$BASE/v1/endpoints/$CI/pause"  | jq -e '.state == "paused"' > /dev/null
api -X POST "$BASE/v1/endpoints/$CI/resume" | jq -e '.state == "active"' > /dev/null

# 9. Replay what ci delivered in the last hour; give an endpoint created now
#    the deliveries of past GitHub events (a backfill).
SINCE=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v-1H +%Y-%m-%dT%H:%M:%SZ)
api -X POST "$BASE/v1/endpoints/$CI/replay" \
  -d "{\"status\":\"delivered\",\"since\":\"$SINCE\"}" | jq -e '.count >= 0' > /dev/null
LATE=$(api -X POST "$BASE/v1/endpoints" \
  -d "{\"name\":\"late\",\"url\":\"https://example.com/late\",\"source_ids\":[\"$GH_ID\"]}" | jq -r .id)
api -X POST "$BASE/v1/endpoints/$LATE/pause" > /dev/null
api -X POST "$BASE/v1/endpoints/$LATE/backfill" -d "{\"since\":\"$SINCE\"}" | jq -e '.count == 1' > /dev/null

# 10. Operations.
curl -sf "$BASE/readyz" > /dev/null
curl -sf "$BASE/metrics" | grep '^kapsel_deliveries_created_total' > /dev/null
echo "walk-through OK"
