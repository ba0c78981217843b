// Package lifecycle is domainguard's pure core (DESIGN.md §2, §3, §8): the
// normalised registration phases and their evidence (phase.go), the
// registry profiles (profile.go: how each registry's lifecycle reads, which
// suffixes it holds, its canaries, each row with its public source), the
// classification of provider answers into phases (classify.go), the
// enforcement decision for one observation (decide.go), the check
// schedule (schedule.go) and the urgency of due domains (urgency.go, the
// rule the producer's sweep turns into SQL). Nothing here does I/O or reads the clock: time is
// passed in, so the roles, the tests and the simulator share the same rules.
package lifecycle
