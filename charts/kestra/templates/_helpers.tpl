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

{{/*
The Kestra version the image runs, "X.Y.Z": image.tag (empty: the chart's appVersion) without
its leading "v" and its "-flavour" suffix (v2.0.8-slim -> 2.0.8, v1.3.2-no-plugins -> 1.3.2;
Kestra's tag scheme, see kestra_ops/upgrades/catalogue.yaml `image`). A tag that is not X.Y.Z
(latest, develop, a digest-like name) says nothing about the version: the chart's appVersion
is used. The pattern is the one kestra_ops/upgrades/version.py (VERSION_RE) uses, so the chart
and `kestra-ops values validate` agree on which tags carry a version.
*/}}
{{- define "kestra.version" -}}
{{- $pattern := `^v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}(-[A-Za-z0-9][A-Za-z0-9.-]{0,40})?$` -}}
{{- $tag := trim (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- if not (regexMatch $pattern $tag) -}}
{{- $tag = trim (toString .Chart.AppVersion) -}}
{{- end -}}
{{- if not (regexMatch $pattern $tag) -}}
{{- fail (printf "Chart.appVersion %q is not a Kestra version (vX.Y.Z)" .Chart.AppVersion) -}}
{{- end -}}
{{- regexFind `[0-9]+\.[0-9]+\.[0-9]+` $tag -}}
{{- end -}}

{{/* "true" when the image runs Kestra 2.0 or later, else "" (use with `if include`). */}}
{{- define "kestra.isV2" -}}
{{- if semverCompare ">=2.0.0" (include "kestra.version" .) -}}true{{- end -}}
{{- end -}}

{{/* "true" or "false": Istio injection of the application pods. */}}
{{- define "kestra.istioInject" -}}
{{- ternary "true" "false" (eq (toString .Values.istio.enabled) "true") -}}
{{- end -}}

{{/* Service DNS name of Kestra inside the cluster. */}}
{{- define "kestra.serviceHost" -}}
{{- printf "kestra.%s.svc" .Release.Namespace -}}
{{- end -}}
