-- waits.sql: what the benchmark database's statements wait on, every 50 ms (psql -f waits.sql
-- beside run.sh; Ctrl-C to stop). Rows for statements running over 60 ms only:
-- a lock wait shows as wait_event_type Lock, a deadlock as two rows waiting on
-- each other until deadlock_timeout (docs/benchmarks.md, "Retention").
SELECT to_char(clock_timestamp(),'HH24:MI:SS.MS') t, pid, backend_type bt, wait_event_type wt, wait_event w, state, round(extract(epoch from clock_timestamp()-query_start)*1000) ms, left(regexp_replace(query,'\s+',' ','g'),70) q FROM pg_stat_activity WHERE (datname='kapsel_ret_run' OR backend_type <> 'client backend') AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid() AND (clock_timestamp()-query_start > interval '60 ms' OR backend_type NOT IN ('client backend')) AND backend_type NOT IN ('logical replication launcher','autovacuum launcher','background writer','walwriter','checkpointer','archiver') \watch 0.05
