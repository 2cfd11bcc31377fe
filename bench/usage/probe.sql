-- One event, then the period's billable quantity read back (a transaction
-- each): the time from sending the event to it being billable.
select usage_ingest_for(:probe::uuid, jsonb_build_array(jsonb_build_object('event_id', gen_random_uuid()::text, 'code', 'api_calls')));
select quantity from usage_billable(:probe::uuid, (now() at time zone 'Asia/Jakarta')::date,
                                    (now() at time zone 'Asia/Jakarta')::date + 1) where metric_code = 'api_calls';
