-- keelson database contract: fencing (issue #12).
-- Leases gain an epoch (fencing token) and the holder's incarnation; journal writes carry the
-- epoch. Touches only tables of 0001: a database that already has 0003 gets this one afterwards.

-- An instance is named by KEELSON_INSTANCE_ID (a pod name, not a uuid) or a random uuid.
alter table keelson_instances alter column id type text using id::text;
-- A uuid per process start: two live processes with the same id are told apart by it.
alter table keelson_instances add column incarnation uuid;

alter table deployment_leases alter column instance_id type text using instance_id::text;
-- Incremented on every acquisition of the lease (a claim, a takeover, a reclaim after restart).
-- Every journal write names the epoch its actor was started under and is refused unless it is
-- still the lease's epoch: a dropped actor can never commit again. A released lease keeps its
-- row (expired) so the epoch never goes back.
alter table deployment_leases add column epoch bigint not null default 1;
-- The incarnation of the process that acquired the lease.
alter table deployment_leases add column incarnation uuid;

-- The epoch of the actor that wrote the snapshot (diagnostics; the fence is the lease's epoch).
alter table deployment_snapshots add column epoch bigint not null default 0;
