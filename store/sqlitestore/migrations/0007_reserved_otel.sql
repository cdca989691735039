-- Kapsel schema, version 7: reserved for OpenTelemetry's trace context on
-- events, written on another branch. This placeholder keeps the versions
-- without a gap until that branch is merged; the merge replaces it with the
-- real 0007 (delete this file then). It changes nothing.
SELECT 1;
