{{- define "qubesec.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qubesec.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "qubesec.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "qubesec.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "qubesec.instanceLabels" -}}
app.kubernetes.io/name: {{ include "qubesec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "qubesec.releaseLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "qubesec.selectorLabels" -}}
{{ include "qubesec.instanceLabels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "qubesec.labels" -}}
{{ include "qubesec.selectorLabels" . }}
{{ include "qubesec.releaseLabels" . }}
{{- end -}}

{{- /* The audit receiver's pods: another component, so the controller's Services never pick them. */}}
{{- define "qubesec.auditSelectorLabels" -}}
{{ include "qubesec.instanceLabels" . }}
app.kubernetes.io/component: audit
{{- end -}}

{{- define "qubesec.auditLabels" -}}
{{ include "qubesec.auditSelectorLabels" . }}
{{ include "qubesec.releaseLabels" . }}
{{- end -}}

{{- define "qubesec.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "qubesec.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "qubesec.image" -}}
{{- $image := .Values.controller.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "qubesec.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.pki.clusterResourceNamespace -}}
{{- end -}}

{{/*
A ClusterRole from files/rbac (the one source of the rules, see docs/rbac.md), renamed for this release.
Arguments: the root context, the file, the new name.
*/}}
{{- define "qubesec.rbacRole" -}}
{{- $root := index . 0 -}}
{{- $role := $root.Files.Get (index . 1) | fromYaml -}}
{{- $_ := set $role.metadata "name" (index . 2) -}}
{{- $_ := set $role.metadata "labels" (include "qubesec.labels" $root | fromYaml) -}}
{{- $role | toYaml -}}
{{- end -}}

{{- define "qubesec.binding" -}}
{{- $root := index . 0 -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ index . 1 }}
metadata:
  name: {{ index . 2 }}
  {{- if eq (index . 1) "RoleBinding" }}
  namespace: {{ $root.Release.Namespace }}
  {{- end }}
  labels:
    {{- include "qubesec.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ index . 3 }}
  name: {{ index . 2 }}
subjects:
  - kind: ServiceAccount
    name: {{ include "qubesec.serviceAccountName" $root }}
    namespace: {{ $root.Release.Namespace }}
{{- end -}}

