{{- define "qrng.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qrng.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "qrng.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "qrng.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels; the argument: a list of the root context and the component (service, feed). */}}
{{- define "qrng.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qrng.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "qrng.labels" -}}
{{ include "qrng.selectorLabels" . }}
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{- define "qrng.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "qrng.tlsSecret" -}}
{{- if .Values.tls.certificate.enabled -}}{{ include "qrng.fullname" . }}-tls{{- else -}}{{ required "tls.secretName is required when tls.certificate.enabled is false" .Values.tls.secretName }}{{- end -}}
{{- end -}}

{{/* Where a source's Secret is mounted. */}}
{{- define "qrng.sourceDir" -}}/etc/qubesec-qrng/sources/{{ . }}{{- end -}}
