-- Kapsel Postgres schema, version 7: an event keeps the W3C trace context
-- it continues (kapsel.Event.Trace; docs/operations.md, Tracing): the
-- traceparent and tracestate it arrived with, or those of the span that
-- accepted it when tracing is on. Each delivery attempt's span continues
-- it.
--
-- NULL is "none" (the common case with tracing off and a provider that
-- sends no traceparent): a NULL costs a bit of the row's null bitmap, and
-- adding a nullable column without a default rewrites no row and takes
-- its ACCESS EXCLUSIVE lock only for the catalog change.

ALTER TABLE events ADD COLUMN trace_parent text, ADD COLUMN trace_state text;
