-- A domain whose TLD no source of evidence covers (no RDAP service, no
-- commercial provider, no DNS evidence) is unmonitored since this time; it
-- is checked weekly and is not "never checked" (DESIGN.md §8). NULL: covered.
ALTER TABLE domains ADD COLUMN unmonitored_since timestamptz;
