{{/*
Helpers of the kestra-ops kestra chart.
Resource names are literal (kestra-config, kestra-standalone, kestra, kestra-postgres,
kestra-backup): the runbook and kestra-ops address them by these names, so install one
release per namespace.
*/}}

{{/* Chart name (the app.kubernetes.io/name label). */}}
{{- define "kestra.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* name-version, the helm.sh/chart label. */}}
{{- define "kestra.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the pods of one component; call with (dict "ctx" $ "component" "x"). */}}
{{- define "kestra.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kestra.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Common labels of every resource; call with (dict "ctx" $ "component" "x"). */}}
{{- define "kestra.labels" -}}
helm.sh/chart: {{ include "kestra.chart" .ctx }}
{{ include "kestra.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: kestra
{{- end -}}

{{/* Kestra server image, the tag defaulting to the chart's appVersion. */}}
{{- define "kestra.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "true" or "false": Istio injection of the application pods. */}}
{{- define "kestra.istioInject" -}}
{{- ternary "true" "false" (eq (toString .Values.istio.enabled) "true") -}}
{{- end -}}

{{/* Service DNS name of Kestra inside the cluster. */}}
{{- define "kestra.serviceHost" -}}
{{- printf "kestra.%s.svc" .Release.Namespace -}}
{{- end -}}
