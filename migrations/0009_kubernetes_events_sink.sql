-- Kubernetes Events (issue #15): a sink kind `kubernetes-events` whose deliveries are core/v1
-- Events on the workloads of the event's deployment (src/notify/sinks/kubernetesEvents.ts),
-- created by the dispatcher with keelson's own cluster credentials. Its url is not used (the
-- url check still applies: `keelson serve` writes https://kubernetes.default.svc); its filters
-- (projects, environments, event_types) and `enabled` work as for any sink. `keelson serve`
-- creates one enabled sink of this kind, named kubernetes-events, when none of that name exists.
alter table notification_sinks drop constraint notification_sinks_kind_valid;
alter table notification_sinks add constraint notification_sinks_kind_valid
  check (kind in ('webhook', 'slack', 'registry', 'kubernetes-events'));
