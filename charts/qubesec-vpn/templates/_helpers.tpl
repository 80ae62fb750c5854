{{- define "qubesec-vpn.fullname" -}}
{{- printf "%s-%s" .Release.Name .Values.gateway.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qubesec-vpn.selectorLabels" -}}
app.kubernetes.io/name: qubesec-vpn
app.kubernetes.io/instance: {{ .Release.Name }}
qubesec.io/vpn-gateway: {{ .Values.gateway.name | quote }}
{{- end -}}

{{- define "qubesec-vpn.labels" -}}
{{ include "qubesec-vpn.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
