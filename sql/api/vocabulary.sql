-- Vocabularies (migration V20): one lookup table per closed set of terms;
-- this view is every term of all of them, and vocabulary_check() the one
-- way a function checks a value against one (the house error shape).

-- Every vocabulary, once: (table, term column, description column); a
-- vocabulary is named after its table. From this list come the view
-- `vocabulary` (every term of all of them: what the BFF loads at startup,
-- as bizos_authenticated, to validate requests and to fill the OpenAPI
-- enums) and vocabulary_terms(), which reads one of them.
-- (vocabulary_problem read the view with a generic plan, and starting
-- that plan opened and locked all 25 tables on every call: 75 µs of a
-- 1,300 µs lead bundle.) And vocabulary_has(), whether a value is a term:
-- one probe of the table's key, which is all a valid value needs (building
-- and sorting the list of terms cost 30 µs of every lead bundle).
do $vocabularies$
declare
  v_sources constant text[][] := array[
    ['app_roles', 'code', 'description'],
    ['lead_channels', 'code', 'description'],
    ['lead_statuses', 'code', 'description'],
    ['ticket_types', 'code', 'description'],
    ['ticket_priorities', 'code', 'description'],
    ['ticket_statuses', 'code', 'description'],
    ['inquiry_statuses', 'code', 'description'],
    ['invoice_statuses', 'code', 'description'],
    ['payment_methods', 'code', 'description'],
    ['kpi_entry_sources', 'code', 'description'],
    ['job_kinds', 'kind', 'description'],
    ['job_statuses', 'code', 'description'],
    ['llm_features', 'code', 'label'],
    ['kb_visibilities', 'code', 'description'],
    ['kb_formats', 'code', 'description'],
    ['kb_statuses', 'code', 'description'],
    ['sop_rule_kinds', 'code', 'description'],
    ['sop_severities', 'code', 'description'],
    ['rfm_segments', 'code', 'label'],
    ['rfm_channels', 'code', 'description'],
    ['api_scopes', 'code', 'description'],
    ['permissions', 'code', 'description'],
    ['activity_types', 'code', 'description'],
    ['webhook_event_types', 'code', 'description'],
    ['webhook_delivery_statuses', 'code', 'description'],
    ['subscription_statuses', 'code', 'description'],
    ['billing_intervals', 'code', 'description'],
    ['billing_invoice_statuses', 'code', 'description'],
    ['billing_line_kinds', 'code', 'description'],
    ['billing_payment_methods', 'code', 'description'],
    ['billing_transfer_proof_statuses', 'code', 'description']];
  v_selects text[];
  v_branches text[];
  v_probes text[];
begin
  select array_agg(format('select %L::text as vocabulary, %I as term, position, %I as description from %I',
                          v_sources[i][1], v_sources[i][2], v_sources[i][3], v_sources[i][1]) order by i),
         array_agg(format('when %L then return (select array_agg(t.%I order by t.position) from %I t);',
                          v_sources[i][1], v_sources[i][2], v_sources[i][1]) order by i),
         array_agg(format('when %L then return exists (select 1 from %I t where t.%I = value);',
                          v_sources[i][1], v_sources[i][1], v_sources[i][2]) order by i)
    into v_selects, v_branches, v_probes
    from generate_subscripts(v_sources, 1) i;
  execute format($v$
    create or replace view vocabulary with (security_invoker = true) as %s $v$,
    array_to_string(v_selects, ' union all '));
  -- One branch per vocabulary: PL/pgSQL plans only the branch it runs.
  execute format($f$
    create or replace function vocabulary_terms(vocabulary text) returns text[]
    language plpgsql stable
    as $$
    begin
      case vocabulary
        %s
        else return null;
      end case;
    end
    $$ $f$, array_to_string(v_branches, ' '));
  execute format($f$
    create or replace function vocabulary_has(vocabulary text, value text) returns boolean
    language plpgsql stable
    as $$
    begin
      case vocabulary
        %s
        else return null;
      end case;
    end
    $$ $f$, array_to_string(v_probes, ' '));
end
$vocabularies$;
comment on view vocabulary is
  'Every term of every vocabulary (one lookup table each, named in the column vocabulary), in list order.';
grant select on vocabulary to bizos_authenticated;
select pin_search_path('vocabulary_terms(text)');
revoke execute on function vocabulary_terms(text) from public;
grant execute on function vocabulary_terms(text) to bizos_authenticated;
comment on function vocabulary_terms(text) is
  'The terms of a vocabulary (as the view vocabulary has them) in list order; NULL for an unknown (or empty) vocabulary.';
select pin_search_path('vocabulary_has(text, text)');
revoke execute on function vocabulary_has(text, text) from public;
grant execute on function vocabulary_has(text, text) to bizos_authenticated;
comment on function vocabulary_has(text, text) is
  'Whether the value is a term of the vocabulary (false for NULL); NULL for an unknown vocabulary.';

-- What is wrong with a value of a vocabulary: NULL when it is a term (or
-- NULL), else 'must be one of a, b, c' (the terms in list order). For
-- checks that collect problems instead of raising (the import checks).
-- An unknown vocabulary is a bug of the caller: 42704.
create or replace function vocabulary_problem(vocabulary text, value text) returns text
language plpgsql stable
as $$
declare
  v_terms text[];
begin
  if vocabulary_has(vocabulary_problem.vocabulary, vocabulary_problem.value) then
    return null;
  end if;
  v_terms := vocabulary_terms(vocabulary_problem.vocabulary);
  if v_terms is null then
    raise exception using errcode = '42704',
      message = format('there is no vocabulary %L', vocabulary_problem.vocabulary);
  end if;
  if vocabulary_problem.value is null or vocabulary_problem.value = any (v_terms) then
    return null;
  end if;
  return 'must be one of ' || array_to_string(v_terms, ', ');
end
$$;
select pin_search_path('vocabulary_problem(text, text)');
revoke execute on function vocabulary_problem(text, text) from public;
grant execute on function vocabulary_problem(text, text) to bizos_authenticated;
comment on function vocabulary_problem(text, text) is
  'NULL if the value is a term of the vocabulary (a table of the vocabulary view) or NULL; else ''must be one of ...''.';

-- The value when it is a term of the vocabulary (or NULL), else the house
-- error: P0001 '<field>: must be one of a, b, c' with COLUMN = field, which
-- the BFF sends as 422 naming the field. Fold the case first (lower() or
-- upper(), as the vocabulary stores it). An unknown vocabulary is a bug of
-- the caller: 42704.
create or replace function vocabulary_check(vocabulary text, value text, field text) returns text
language plpgsql stable
as $$
declare
  v_problem text;
begin
  if vocabulary_has(vocabulary_check.vocabulary, vocabulary_check.value) then
    return vocabulary_check.value;
  end if;
  v_problem := vocabulary_problem(vocabulary_check.vocabulary, vocabulary_check.value);
  if v_problem is not null then
    raise exception using errcode = 'P0001', column = field, message = field || ': ' || v_problem;
  end if;
  return vocabulary_check.value;
end
$$;
select pin_search_path('vocabulary_check(text, text, text)');
revoke execute on function vocabulary_check(text, text, text) from public;
grant execute on function vocabulary_check(text, text, text) to bizos_authenticated;
comment on function vocabulary_check(text, text, text) is
  'The value if it is a term of the vocabulary (a table of the vocabulary view) or NULL; else P0001 "<field>: must be one of ..." with COLUMN = field.';
