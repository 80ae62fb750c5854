// Prometheus metrics served on :10254/metrics. docs/metrics.md lists each.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'qubesec_controller_' });
  const m = {
    registry,
    reloads: new Counter({ name: 'qubesec_config_reloads_total', help: 'NGINX configuration reloads attempted (or starts)', registers: [registry] }),
    newHosts: new Gauge({ name: 'qubesec_new_hosts', help: 'Hosts served from the catch-all path without a reload, waiting for the reload that brings their server blocks', registers: [registry] }),
    newHostUpdates: new Counter({ name: 'qubesec_new_host_updates_total', help: 'Updates of the new hosts\' table in NGINX shared memory that served new hosts without a reload', registers: [registry] }),
    newHostUpdateFailures: new Counter({ name: 'qubesec_new_host_update_failures_total', help: 'New hosts\' tables NGINX did not take (the controller reloaded instead)', registers: [registry] }),
    endpointUpdates: new Counter({ name: 'qubesec_endpoint_updates_total', help: 'Endpoint changes applied to NGINX shared memory without a reload', registers: [registry] }),
    endpointUpdateFailures: new Counter({ name: 'qubesec_endpoint_update_failures_total', help: 'Endpoint lists NGINX did not store: an update without a reload (the controller reloaded instead) or the load at a reload', registers: [registry] }),
    reloadFailures: new Counter({ name: 'qubesec_config_reload_failures_total', help: 'Configurations that failed nginx -t or the reload; the previous one kept serving', registers: [registry] }),
    applyRetries: new Counter({ name: 'qubesec_config_apply_retries_total', help: 'Syncs run again, with backoff, after NGINX refused a configuration or an Ingress, though nothing changed', registers: [registry] }),
    lastReloadSuccessful: new Gauge({ name: 'qubesec_config_last_reload_successful', help: '1 if the last configuration applied, 0 if it was refused', registers: [registry] }),
    lastReloadSuccessTimestamp: new Gauge({ name: 'qubesec_config_last_reload_success_timestamp_seconds', help: 'Unix time of the last successful reload', registers: [registry] }),
    configHash: new Gauge({ name: 'qubesec_config_hash', help: 'Hash of the running configuration (first 48 bits of its sha256)', registers: [registry] }),
    syncDuration: new Histogram({ name: 'qubesec_sync_duration_seconds', help: 'Time from a change to the configuration serving (translate, render, test, reload, confirm)', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    ingresses: new Gauge({ name: 'qubesec_ingresses', help: 'Ingresses of our class by state: served, or rejected by translation or NGINX (their last good version, if any, still serves)', labelNames: ['state'], registers: [registry] }),
    certificateExpiry: new Gauge({ name: 'qubesec_certificate_expiry_timestamp_seconds', help: 'notAfter of each certificate served, by host and key algorithm', labelNames: ['host', 'secret', 'key_algorithm'], registers: [registry] }),
    handshakes: new Counter({ name: 'qubesec_tls_handshakes_total', help: 'TLS connections by negotiated key-exchange group (counted at their first request)', labelNames: ['group', 'group_class', 'resumed'], registers: [registry] }),
    leader: new Gauge({ name: 'qubesec_leader', help: '1 while this replica leads: it holds the Lease and its leader-only work (Ingress status, the PKI) runs; else 0', registers: [registry] }),
    sourceListFailures: new Counter({ name: 'qubesec_source_list_failures_total', help: 'Lists of a watched kind that failed (initial or relist); each is retried with capped exponential backoff', labelNames: ['resource'], registers: [registry] }),
    sourceSynced: new Gauge({ name: 'qubesec_source_synced', help: '1 once the first full list of a watched kind is in; nothing acts on that kind before', labelNames: ['resource'], registers: [registry] }),
    signatureDecisions: new Counter({ name: 'qubesec_signature_decisions_total', help: 'Admission reviews of objects a SignaturePolicy matches, by policy, mode and result: verified, failed (unsigned, tampered, unknown or too few signers) or error (the policy or verification could not be evaluated)', labelNames: ['policy', 'mode', 'result'], registers: [registry] }),
    signatureVerification: new Histogram({ name: 'qubesec_signature_verification_seconds', help: 'Time to verify one object against one SignaturePolicy at admission (canonical form and every signature)', labelNames: ['mode'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    signatureUndecided: new Counter({ name: 'qubesec_signature_undecided_total', help: 'Admission reviews refused because the SignaturePolicies and their trust sources were not loaded yet (fail closed)', registers: [registry] }),
    nginxRestarts: new Counter({ name: 'qubesec_nginx_restarts_total', help: 'Times the NGINX master died and was restarted', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The audit receiver's metrics (`qubesec audit serve`, its own process and registry). */
export function createAuditMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'qubesec_audit_process_' });
  return {
    registry,
    eventsAppended: new Counter({ name: 'qubesec_audit_events_appended_total', help: 'Audit events appended to the log and synced to disk', registers: [registry] }),
    checkpoints: new Counter({ name: 'qubesec_audit_checkpoints_total', help: 'Signed checkpoints appended to the log', registers: [registry] }),
    storeBytes: new Gauge({ name: 'qubesec_audit_store_bytes', help: 'Bytes of the log: every segment file', registers: [registry] }),
    treeSize: new Gauge({ name: 'qubesec_audit_tree_size', help: 'Records in the log (the size the next checkpoint signs)', registers: [registry] }),
    appendDuration: new Histogram({ name: 'qubesec_audit_append_duration_seconds', help: 'Time to append one batch: encode, write, fdatasync', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    refusedBatches: new Counter({ name: 'qubesec_audit_refused_batches_total', help: 'Batches answered with an error the API server retries, by reason: full (the store is full), busy (--max-pending-batches being received or waiting for the writer), error (a write failed)', labelNames: ['reason'], registers: [registry] }),
    droppedBatches: new Counter({ name: 'qubesec_audit_dropped_batches_total', help: 'Authenticated batches answered with an error the API server does not retry (malformed, too large): their events are lost', registers: [registry] }),
  };
}

export type AuditMetrics = ReturnType<typeof createAuditMetrics>;
