{{/*
The database of the chart (database.mode). Sources of the CloudNativePG facts used here and in
cnpg-cluster.yaml (github.com/cloudnative-pg/cloudnative-pg):
  * Service `<cluster>-rw` is the primary (read/write): docs/src/service_management.md
    ("`<CLUSTER_NAME>-<SERVICE_NAME>`", "rw: Points to the primary"); api/v1/cluster_types.go
    ServiceReadWriteSuffix = "-rw".
  * Secret `<cluster>-app` holds the database owner's credentials, keys username, password,
    host, port, dbname, uri, jdbc-uri...: docs/src/applications.md ("Secrets");
    api/v1/cluster_types.go ApplicationUserSecretSuffix = "-app"; pkg/specs/secrets.go.
  * Secret `<cluster>-ca` holds the server CA, key ca.crt, "used as `sslrootcert` in clients'
    connection strings": docs/src/certificates.md ("Server CA secret");
    api/v1/cluster_funcs.go GetServerCASecretName (DefaultServerCaSecretSuffix "-ca"). The
    server certificate names `<cluster>-rw`, `<cluster>-rw.<ns>`, `<cluster>-rw.<ns>.svc`
    (api/v1/cluster_funcs.go GetClusterAltDNSNames), so sslmode verify-full works on them.
pgjdbc reads sslmode (disable, allow, prefer, require, verify-ca, verify-full) and sslrootcert
(a file) from the JDBC URL: https://jdbc.postgresql.org/documentation/use/ ("Connection
Parameters").
*/}}

{{/* bundled | external | cloudnativepg (default bundled; anything else fails the render). */}}
{{- define "kestra.databaseMode" -}}
{{- $mode := toString (((.Values.database | default dict).mode) | default "bundled") -}}
{{- if not (has $mode (list "bundled" "external" "cloudnativepg")) -}}
{{- fail (printf "database.mode %q: expected bundled, external or cloudnativepg" $mode) -}}
{{- end -}}
{{- if eq $mode "external" -}}
{{- $ext := .Values.database.external -}}
{{- if not $ext.host -}}
{{- fail "database.mode external: set database.external.host (the PostgreSQL server's host name)" -}}
{{- end -}}
{{- if and $ext.ca.secretName $ext.ca.configMapName -}}
{{- fail "database.external.ca: name either secretName or configMapName, not both" -}}
{{- end -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* Where the CA of the database server is mounted into Kestra (the URLs' sslrootcert). */}}
{{- define "kestra.dbCAPath" -}}/app/db-ca{{- end -}}

{{/* The Secret and key Kestra's KESTRA_DB_PASSWORD comes from, as "name\nkey". */}}
{{- define "kestra.dbPasswordRef" -}}
{{- $mode := include "kestra.databaseMode" . -}}
{{- $sec := .Values.existingSecrets.database -}}
{{- if eq $mode "cloudnativepg" -}}
{{- printf "%s-app\npassword" .Values.database.cloudnativepg.clusterName -}}
{{- else if eq $mode "external" -}}
{{- $own := .Values.database.external.passwordSecret | default dict -}}
{{- printf "%s\n%s" ($own.name | default $sec.name) ($own.key | default $sec.passwordKey) -}}
{{- else -}}
{{- printf "%s\n%s" $sec.name $sec.passwordKey -}}
{{- end -}}
{{- end -}}

{{/*
The volume source (secret: / configMap:) holding the database server's CA, or nothing: external mode with ca.secretName or
ca.configMapName; cloudnativepg mode with sslmode verify-ca/verify-full (Secret <cluster>-ca).
*/}}
{{- define "kestra.dbCAVolume" -}}
{{- $mode := include "kestra.databaseMode" . -}}
{{- if eq $mode "external" -}}
{{- $ca := .Values.database.external.ca | default dict -}}
{{- if $ca.secretName -}}
secret:
  secretName: {{ $ca.secretName | quote }}
  items:
    - key: {{ $ca.key | default "ca.crt" | quote }}
      path: {{ $ca.key | default "ca.crt" | quote }}
{{- else if $ca.configMapName -}}
configMap:
  name: {{ $ca.configMapName | quote }}
  items:
    - key: {{ $ca.key | default "ca.crt" | quote }}
      path: {{ $ca.key | default "ca.crt" | quote }}
{{- end -}}
{{- else if eq $mode "cloudnativepg" -}}
{{- $c := .Values.database.cloudnativepg -}}
{{- if hasPrefix "verify-" (toString $c.sslmode) -}}
secret:
  secretName: {{ printf "%s-ca" $c.clusterName | quote }}
  items:
    - key: ca.crt
      path: ca.crt
{{- end -}}
{{- end -}}
{{- end -}}
