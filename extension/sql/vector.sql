-- Vector search: the bizos.vector(n) type, distance operators, casts and the
-- bizos_ivf index access method with its operator classes.
-- The functions are C functions of the bizos library (extension/src/vector).

create type bizos.vector;

create function bizos.vector_in(cstring, oid, integer) returns bizos.vector
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_in';
create function bizos.vector_out(bizos.vector) returns cstring
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_out';
create function bizos.vector_typmod_in(cstring[]) returns integer
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_typmod_in';
create function bizos.vector_recv(internal, oid, integer) returns bizos.vector
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_recv';
create function bizos.vector_send(bizos.vector) returns bytea
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_send';

-- external: stored uncompressed (floats do not compress) and, when large,
-- out of line.
create type bizos.vector (
  input = bizos.vector_in,
  output = bizos.vector_out,
  typmod_in = bizos.vector_typmod_in,
  receive = bizos.vector_recv,
  send = bizos.vector_send,
  internallength = variable,
  alignment = int4,
  storage = external
);
comment on type bizos.vector is
  'A vector of f32; vector(n) fixes the dimension. Text form [1,2,3].';

-- Length coercion: a value assigned to a vector(n) column must have n
-- dimensions.
create function bizos.vector(bizos.vector, integer, boolean) returns bizos.vector
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_coerce';
create cast (bizos.vector as bizos.vector)
  with function bizos.vector(bizos.vector, integer, boolean) as implicit;

create function bizos.array_to_vector(real[], integer, boolean) returns bizos.vector
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_array_to_vector';
create function bizos.array_to_vector(double precision[], integer, boolean) returns bizos.vector
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_array_to_vector';
create function bizos.array_to_vector(integer[], integer, boolean) returns bizos.vector
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_array_to_vector';
create function bizos.vector_to_real_array(bizos.vector) returns real[]
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_to_real_array';

create cast (real[] as bizos.vector)
  with function bizos.array_to_vector(real[], integer, boolean) as assignment;
create cast (double precision[] as bizos.vector)
  with function bizos.array_to_vector(double precision[], integer, boolean) as assignment;
create cast (integer[] as bizos.vector)
  with function bizos.array_to_vector(integer[], integer, boolean) as assignment;
create cast (bizos.vector as real[])
  with function bizos.vector_to_real_array(bizos.vector) as assignment;

create function bizos.l2_distance(bizos.vector, bizos.vector) returns double precision
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_l2_distance';
create function bizos.cosine_distance(bizos.vector, bizos.vector) returns double precision
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_cosine_distance';
create function bizos.inner_product(bizos.vector, bizos.vector) returns double precision
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_inner_product';
create function bizos.negative_inner_product(bizos.vector, bizos.vector) returns double precision
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_negative_inner_product';
create function bizos.vector_dims(bizos.vector) returns integer
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_dims';
create function bizos.vector_norm(bizos.vector) returns double precision
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_vector_norm';

create operator bizos.<-> (
  leftarg = bizos.vector, rightarg = bizos.vector,
  function = bizos.l2_distance, commutator = operator(bizos.<->)
);
create operator bizos.<=> (
  leftarg = bizos.vector, rightarg = bizos.vector,
  function = bizos.cosine_distance, commutator = operator(bizos.<=>)
);
create operator bizos.<#> (
  leftarg = bizos.vector, rightarg = bizos.vector,
  function = bizos.negative_inner_product, commutator = operator(bizos.<#>)
);

-- The index access method. Support function 1 of each operator class names
-- the metric the index clusters and orders by.
create function bizos._ivf_handler(internal) returns index_am_handler
  strict language c as 'MODULE_PATHNAME', 'bizos_ivf_handler';
create access method bizos_ivf type index handler bizos._ivf_handler;
comment on access method bizos_ivf is
  'IVF-flat approximate nearest-neighbour index on bizos.vector (with (lists = n); set bizos.ivf_probes)';

create function bizos._ivf_metric_l2(bizos.vector) returns integer
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_ivf_metric_l2';
create function bizos._ivf_metric_cosine(bizos.vector) returns integer
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_ivf_metric_cosine';
create function bizos._ivf_metric_ip(bizos.vector) returns integer
  immutable strict parallel safe language c as 'MODULE_PATHNAME', 'bizos_ivf_metric_ip';

create operator class bizos.vector_l2_ops default for type bizos.vector using bizos_ivf as
  operator 1 bizos.<-> (bizos.vector, bizos.vector) for order by pg_catalog.float_ops,
  function 1 bizos._ivf_metric_l2(bizos.vector);
create operator class bizos.vector_cosine_ops for type bizos.vector using bizos_ivf as
  operator 1 bizos.<=> (bizos.vector, bizos.vector) for order by pg_catalog.float_ops,
  function 1 bizos._ivf_metric_cosine(bizos.vector);
create operator class bizos.vector_ip_ops for type bizos.vector using bizos_ivf as
  operator 1 bizos.<#> (bizos.vector, bizos.vector) for order by pg_catalog.float_ops,
  function 1 bizos._ivf_metric_ip(bizos.vector);

-- Whether an index's lists still fit its table (0.8.0): extension/src/
-- vector/am/state.rs. Needs SELECT on the table.
create function bizos.ivf_index_state(index regclass,
    out trained_rows bigint, out current_rows bigint, out lists integer,
    out lists_after_rebuild integer, out longest_list bigint, out mean_list double precision,
    out longest_to_mean double precision, out needs_retrain boolean, out reason text)
  returns setof record
  volatile strict parallel safe language c as 'MODULE_PATHNAME', 'ivf_index_state_wrapper';
comment on function bizos.ivf_index_state(regclass) is
  'State of a bizos_ivf index: rows its lists were trained on and rows now, lists (now and after a rebuild), longest and mean list, and whether a rebuild (REINDEX INDEX CONCURRENTLY) is due and why';
