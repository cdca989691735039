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

# 1. A tenant (admin token). Its API key is shown this once.
KEY=$(curl -sf -X POST "$BASE/v1/tenants" -H "Authorization: Bearer $ADMIN" \
  -d '{"name":"acme"}' | jq -r .api_key)

# 2. A receiver to deliver to: here kapseld itself, through an endpoint that
#    checks Standard Webhooks signatures with a secret we choose. It stays
#    paused, so what it receives waits there for us to read.
SECRET="whsec_$(openssl rand -base64 32)"
RECEIVER=$(curl -sf -X POST "$BASE/v1/endpoints" -H "Authorization: Bearer $KEY" \
  -d "{\"name\":\"receiver\",\"url\":\"https://example.com/unused\",
       \"ingest_verifier\":{\"scheme\":\"standard-webhooks\",\"secrets\":[\"$SECRET\"]}}" | jq -r .id)
curl -sf -X POST "$BASE/v1/endpoints/$RECEIVER/pause" -H "Authorization: Bearer $KEY" > /dev/null

# 3. The endpoint GitHub sends to: it checks GitHub signatures and delivers
#    to the receiver, signing with $SECRET.
EP=$(curl -sf -X POST "$BASE/v1/endpoints" -H "Authorization: Bearer $KEY" \
  -d "{\"name\":\"github\",\"url\":\"$BASE/ingest/$RECEIVER\",
       \"ingest_verifier\":{\"scheme\":\"github\",\"secrets\":[\"gh-secret\"]},
       \"signing_secret\":\"$SECRET\"}" | jq -r .id)

# 4. A webhook signed as GitHub signs it.
BODY='{"action":"opened","number":1}'
SIG="sha256=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac gh-secret | sed 's/^.* //')"
EVT=$(curl -sf -X POST "$BASE/ingest/$EP" -H "Content-Type: application/json" \
  -H "X-Hub-Signature-256: $SIG" -H "X-GitHub-Delivery: delivery-1" -d "$BODY" | jq -r .id)
echo "accepted $EVT"

# The same delivery id again is a duplicate (200, same id); a bad signature is 401 E1001.
curl -s -X POST "$BASE/ingest/$EP" -H "X-Hub-Signature-256: $SIG" -H "X-GitHub-Delivery: delivery-1" \
  -d "$BODY" | jq -e ".duplicate == true and .id == \"$EVT\"" > /dev/null
curl -s -X POST "$BASE/ingest/$EP" -H "X-Hub-Signature-256: sha256=00" -d "$BODY" | jq -e '.code == "E1001"' > /dev/null

# 5. Delivered within milliseconds: the event and its attempts.
for _ in $(seq 100); do
  STATUS=$(curl -sf "$BASE/v1/events/$EVT" -H "Authorization: Bearer $KEY" | jq -r .status)
  [ "$STATUS" = delivered ] && break
  sleep 0.1
done
echo "event $EVT is $STATUS"
[ "$STATUS" = delivered ]
curl -sf "$BASE/v1/events/$EVT/attempts" -H "Authorization: Bearer $KEY" \
  | jq -e '.data[0].status_code == 202 and .data[0].trigger == "scheduled"' > /dev/null

# The receiver accepted it only because its Standard Webhooks signature
# verified; it kept the body byte for byte.
curl -sf "$BASE/v1/events?endpoint_id=$RECEIVER" -H "Authorization: Bearer $KEY" \
  | jq -e '.data | length == 1' > /dev/null
GOT=$(curl -sf "$BASE/v1/events?endpoint_id=$RECEIVER" -H "Authorization: Bearer $KEY" | jq -r '.data[0].id')
curl -sf "$BASE/v1/events/$GOT?include=body" -H "Authorization: Bearer $KEY" \
  | jq -e --arg body "$BODY" '.body == $body' > /dev/null
echo "receiver verified and stored $GOT"

# 6. Health, a manual retry (same webhook-id), secret rotation, pause/resume.
curl -sf "$BASE/v1/endpoints/$EP/health" -H "Authorization: Bearer $KEY" | jq -e '.success_rate == 1' > /dev/null
curl -sf -X POST "$BASE/v1/events/$EVT/retry" -H "Authorization: Bearer $KEY" | jq -e '.status == "pending"' > /dev/null
curl -sf -X POST "$BASE/v1/endpoints/$EP/rotate-signing-secret" -H "Authorization: Bearer $KEY" \
  -d '{"grace_period_s":3600}' | jq -e '.signing_secret | startswith("whsec_")' > /dev/null
curl -sf -X POST "$BASE/v1/endpoints/$EP/pause"  -H "Authorization: Bearer $KEY" | jq -e '.state == "paused"' > /dev/null
curl -sf -X POST "$BASE/v1/endpoints/$EP/resume" -H "Authorization: Bearer $KEY" | jq -e '.state == "active"' > /dev/null

# 7. Replay everything delivered in the last hour.
SINCE=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v-1H +%Y-%m-%dT%H:%M:%SZ)
curl -sf -X POST "$BASE/v1/endpoints/$EP/replay" -H "Authorization: Bearer $KEY" \
  -d "{\"status\":\"delivered\",\"since\":\"$SINCE\"}" | jq -e '.count >= 0' > /dev/null

# 8. Operations.
curl -sf "$BASE/readyz" > /dev/null
curl -sf "$BASE/metrics" | grep '^kapsel_events_ingested_total' > /dev/null
echo "walk-through OK"
