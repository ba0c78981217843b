-- Backfills the producer runs at start, each keyed by the revision of the
-- rules it last completed against, so that a restart with the same rules
-- does not scan again (issue #13 item 10, DESIGN.md §2 "Private
-- suffixes").
--
-- watch_name: emails.watch_name computed for every stored address with
-- the Public Suffix List and WatchName rule named by revision
-- (domainname.WatchNameRevision). Intake and import set watch_name of each
-- address they store, so it stays true until the producer runs with
-- another revision, which computes every address's name again. '' means
-- never completed: addresses stored before migration 0013 have no
-- watch_name yet.
CREATE TABLE backfills (
    name         text        PRIMARY KEY,
    revision     text        NOT NULL,
    completed_at timestamptz
);
INSERT INTO backfills (name, revision) VALUES ('watch_name', '');
