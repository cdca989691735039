-- Kapsel SQLite schema, version 7: an event keeps the W3C trace context it
-- continues (kapsel.Event.Trace; docs/operations.md, Tracing): the
-- traceparent and tracestate it arrived with, or those of the span that
-- accepted it when tracing is on. Each delivery attempt's span continues
-- it. '' is "none"; SQLite adds a NOT NULL column only with a default, and
-- the default costs existing rows nothing (it is not written into them).

ALTER TABLE events ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN trace_state TEXT NOT NULL DEFAULT '';
