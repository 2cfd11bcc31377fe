-- llm_begin adds to the usage counters itself (a statement of its own,
-- whose plan the session caches) instead of calling a helper for each of
-- the four counters; the helper goes.
drop function if exists llm_counter_take(uuid, text, uuid, text, date, bigint, bigint);
