#!/usr/bin/env bash
# Replays the requests behind FINDINGS.md against a server started by `scripts/kube-real start DIR`
# and prints each status code and body, so the findings can be re-checked on another version.
#   scripts/kube-real.d/probe.sh DIR
set -uo pipefail
D="${1:?usage: probe.sh DIR}"
URL=$(cat "$D/url"); TOKEN=$(cut -d, -f1 "$D/tokens.csv"); CA="$D/pki/ca.crt"
S=${SFX:-$RANDOM}
NS="probe-$S"
req() { # METHOD PATH [BODY] [CONTENT-TYPE]
    local m="$1" p="$2" b="${3:-}" ct="${4:-application/json}"
    echo "### $m $p${b:+ ($ct)}"
    if [ -n "$b" ]; then
        curl -sS --cacert "$CA" -H "Authorization: Bearer ${TOK:-$TOKEN}" -X "$m" -H "Content-Type: $ct" \
            --data-binary "$b" -w '\n--> HTTP %{http_code}\n' "$URL$p"
    else
        curl -sS --cacert "$CA" -H "Authorization: Bearer ${TOK:-$TOKEN}" -X "$m" -w '\n--> HTTP %{http_code}\n' "$URL$p"
    fi
}
SC=/apis/storage.k8s.io/v1/storageclasses
PVC=/api/v1/namespaces/$NS/persistentvolumeclaims
LEASE=/apis/coordination.k8s.io/v1/namespaces/$NS/leases
MP=application/merge-patch+json
req POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"}}"
req POST $SC "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{\"name\":\"sc-$S\"},\"provisioner\":\"example.com/none\",\"parameters\":{\"a\":\"1\"},\"reclaimPolicy\":\"Delete\",\"volumeBindingMode\":\"Immediate\"}"
req POST $SC "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{\"name\":\"sc-$S\"},\"provisioner\":\"example.com/none\"}"
req PATCH $SC/sc-$S '{"parameters":{"a":"2"}}' $MP
req PATCH $SC/sc-$S '{"provisioner":"example.com/other"}' $MP
req PATCH $SC/sc-$S '{"reclaimPolicy":"Retain"}' $MP
req PATCH $SC/sc-$S '{"volumeBindingMode":"WaitForFirstConsumer"}' $MP
req PATCH $SC/sc-$S '{"mountOptions":["ro"]}' $MP
req PATCH $SC/sc-$S '{"parameters":{"a":"2"},"reclaimPolicy":"Retain"}' $MP
req POST $SC '{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"Bad_Name"},"provisioner":"example.com/none"}'
req POST $SC '{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"x"},"provisioner":"bad provisioner!"}'
req POST $SC '{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"x2"},"provisioner":"example.com/none","reclaimPolicy":"Keep","volumeBindingMode":"Sometimes"}'
req GET $SC/missing-$S
req PUT $SC/sc-$S "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{\"name\":\"sc-$S\",\"resourceVersion\":\"1\"},\"provisioner\":\"example.com/none\",\"parameters\":{\"a\":\"1\"},\"reclaimPolicy\":\"Delete\",\"volumeBindingMode\":\"Immediate\"}"
req PATCH $SC/sc-$S '{"parameters":{"a":"2"}}' application/json
req PATCH $SC/sc-$S 'not json' $MP
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"data\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"storageClassName\":\"sc-$S\",\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"q\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"storageClassName\":\"sc-$S\",\"resources\":{\"requests\":{\"storage\":\"10Gii\"}}}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"Bad.Name_\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"am\"},\"spec\":{\"accessModes\":[\"ReadWriteSometimes\"],\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"noam\"},\"spec\":{\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"nostorage\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"]}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"neg\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":{\"storage\":\"-1Gi\"}}}}"
req PATCH $PVC/data '{"spec":{"storageClassName":"other"}}' $MP
req PATCH $PVC/data '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}' $MP
req PATCH $PVC/data '{"spec":{"resources":{"requests":{"storage":"512Mi"}}}}' $MP
req PATCH $PVC/data '{"metadata":{"labels":{"role":"genesis"}}}' $MP
req POST /api/v1/namespaces/missing-$S/persistentvolumeclaims "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"data\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"nosc\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"storageClassName\":\"missing-$S\",\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $SC "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{\"name\":\"wffc-$S\"},\"provisioner\":\"example.com/none\",\"volumeBindingMode\":\"WaitForFirstConsumer\"}"
req POST $PVC "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"wffc\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"storageClassName\":\"wffc-$S\",\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}"
req POST $LEASE '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15}}'
req POST $LEASE '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"zero"},"spec":{"holderIdentity":"a","leaseDurationSeconds":0}}'
req POST $LEASE '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"neg"},"spec":{"holderIdentity":"a","leaseDurationSeconds":-5,"leaseTransitions":-1}}'
req POST $LEASE '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"Bad_Lease"},"spec":{"holderIdentity":"a"}}'
req PATCH $LEASE/lock '{"spec":{"leaseDurationSeconds":0}}' $MP
req PUT $LEASE/lock '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock","resourceVersion":"1"},"spec":{"holderIdentity":"b","leaseDurationSeconds":15}}'
req PUT $LEASE/lock '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"b","leaseDurationSeconds":15}}'
req PUT $LEASE/other '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"b"}}'
req POST $LEASE '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15}}'
req DELETE $LEASE/missing
TOK=wrong req GET /api/v1/namespaces
req GET /apis/storage.k8s.io/v1/nosuchkind
sleep 3
req GET "/api/v1/namespaces/$NS/events"
req DELETE $PVC/data
req GET $PVC/data
sleep 3
req GET $PVC/data
req DELETE /api/v1/namespaces/$NS
req GET /api/v1/namespaces/$NS
req POST $LEASE '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"late"},"spec":{"holderIdentity":"a"}}'
sleep 10
req GET /api/v1/namespaces/$NS
req DELETE $SC/sc-$S
req DELETE $SC/wffc-$S
