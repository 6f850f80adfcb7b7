{{/* Model volumes: dict "root" $ "name" CLAIM-NAME "v" MODEL-VOLUME-VALUES */}}

{{/* The pod volume source of a model volume. */}}
{{- define "triage.modelVolumeSource" -}}
{{- $v := .v -}}
{{- if eq $v.type "hostPath" -}}
hostPath:
  path: {{ required "modelVolume.hostPath is required for type hostPath" $v.hostPath }}
  type: Directory
{{- else if eq $v.type "existingClaim" -}}
persistentVolumeClaim:
  claimName: {{ required "modelVolume.existingClaim is required for type existingClaim" $v.existingClaim }}
  readOnly: {{ $v.readOnly }}
{{- else if has $v.type (list "pvc" "objectStorage") -}}
persistentVolumeClaim:
  claimName: {{ .name }}
  readOnly: {{ $v.readOnly }}
{{- else -}}
{{- fail (printf "modelVolume.type %q: expected none, pvc, existingClaim, hostPath or objectStorage" $v.type) -}}
{{- end -}}
{{- end -}}

{{/* The PersistentVolumeClaim (and, for objectStorage, the static PersistentVolume) a model
     volume needs; nothing for the other types. */}}
{{- define "triage.modelVolumeObjects" -}}
{{- $v := .v -}}
{{- $root := .root -}}
{{- if eq $v.type "objectStorage" }}
{{- $o := $v.objectStorage }}
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: {{ printf "%s-%s" $root.Release.Namespace .name }}
  labels:
    {{- include "triage.labels" $root | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
spec:
  capacity:
    storage: {{ $v.size }}
  accessModes: [ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef:
    namespace: {{ $root.Release.Namespace }}
    name: {{ .name }}
  {{- with $o.mountOptions }}
  mountOptions:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  csi:
    driver: {{ required "modelVolume.objectStorage.driver is required for type objectStorage" $o.driver }}
    volumeHandle: {{ required "modelVolume.objectStorage.volumeHandle is required for type objectStorage" $o.volumeHandle }}
    readOnly: true
    {{- with $o.volumeAttributes }}
    volumeAttributes:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $o.nodePublishSecretName }}
    nodePublishSecretRef:
      name: {{ . }}
      namespace: {{ $root.Release.Namespace }}
    {{- end }}
{{- end }}
{{- if has $v.type (list "pvc" "objectStorage") }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "triage.labels" $root | nindent 4 }}
  annotations:
    # Model files outlive the release.
    helm.sh/resource-policy: keep
spec:
  {{- if eq $v.type "objectStorage" }}
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: {{ printf "%s-%s" $root.Release.Namespace .name }}
  {{- else }}
  accessModes:
    {{- toYaml $v.accessModes | nindent 4 }}
  {{- with $v.storageClassName }}
  storageClassName: {{ . }}
  {{- end }}
  {{- end }}
  resources:
    requests:
      storage: {{ $v.size }}
{{- end }}
{{- end -}}

{{/* A model server's modelVolume with the defaults of components.classifier.modelVolume. */}}
{{- define "triage.modelServerVolume" -}}
{{- $defaults := dict "type" "none" "mountPath" "/models" "readOnly" true "size" "50Gi" "storageClassName" "" "accessModes" (list "ReadWriteOnce") "existingClaim" "" "hostPath" "" "objectStorage" (dict "driver" "" "volumeHandle" "" "volumeAttributes" (dict) "nodePublishSecretName" "" "mountOptions" (list)) -}}
{{- $v := deepCopy (default dict .modelVolume) -}}
{{- range $k, $d := $defaults -}}
{{- if not (hasKey $v $k) -}}{{- $_ := set $v $k $d -}}{{- end -}}
{{- end -}}
{{- toYaml $v -}}
{{- end -}}
