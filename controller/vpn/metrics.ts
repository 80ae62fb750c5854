// The VPN gateway's Prometheus metrics, registered on the registry of the process that runs it (the conventions of
// controller/observability/metrics.ts). docs/metrics.md lists each; controller/docs.test.ts checks it does.
import { Counter, Gauge, type Registry } from 'prom-client';

export function createVpnMetrics(registry: Registry) {
  const registers = [registry];
  return {
    ikeSas: new Gauge({ name: 'qubesec_vpn_ike_sas', help: 'Established IKE SAs of a VpnPeer, by key exchange: hybrid (X25519 + ML-KEM) or classical (compatible mode only)', labelNames: ['peer', 'key_exchange'], registers }),
    proposalsRefused: new Counter({ name: 'qubesec_vpn_proposals_refused_total', help: 'IKE proposals charon refused (NO_PROPOSAL_CHOSEN), by VpnPeer (or the gateway, for an unknown address) and whether the offer held ML-KEM', labelNames: ['peer', 'offered_ml_kem'], registers }),
    authenticationsFailed: new Counter({ name: 'qubesec_vpn_authentications_failed_total', help: 'IKE_AUTH exchanges charon answered with AUTHENTICATION_FAILED (untrusted certificate, wrong identity, missing or other PPK), by VpnPeer', labelNames: ['peer'], registers }),
    invalidPeers: new Gauge({ name: 'qubesec_vpn_invalid_peers', help: 'VpnPeers of the gateway that failed validation and are not loaded', registers }),
    ready: new Gauge({ name: 'qubesec_vpn_ready', help: 'The Ready condition of the VpnGateway and each VpnPeer (object: vpngateways/NS/NAME or vpnpeers/NS/NAME): 1 when True, 0 when False, labelled with its reason (Loaded, Connected, NotConnected, Invalid, ...); one series per object', labelNames: ['object', 'reason'], registers }),
    ppkRotations: new Counter({ name: 'qubesec_vpn_ppk_rotations_total', help: 'PPKs made or rotated for spec.ppk.generate, by result (ok; failed: the entropy source gave nothing or the Secret could not be written)', labelNames: ['result'], registers }),
    ppkAge: new Gauge({ name: 'qubesec_vpn_ppk_age_seconds', help: 'Age of the current generated PPK (spec.ppk.generate), updated every --status-interval-ms', registers }),
    loads: new Counter({ name: 'qubesec_vpn_config_loads_total', help: 'swanctl --load-all runs after a change (never a charon restart), by result (ok, failed)', labelNames: ['result'], registers }),
  };
}

export type VpnMetrics = ReturnType<typeof createVpnMetrics>;
