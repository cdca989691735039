// Package campaign is Kapsel's fault-injection campaign (issue 12): it
// drives the real kapseld binary as subprocesses against a private Postgres
// it can stop and start, delivers to a destination that misbehaves on
// purpose, kills nodes with SIGKILL, and then checks SPEC §1 on what the
// API, the database and the destination's request log say.
//
// It holds only tests and their helpers; nothing imports it. See
// docs/guarantees.md, "Fault campaign", for the commands and the last
// results.
package campaign
