/* The public contract of rma-brokerd: names every client and the daemon share.
 * The interface itself is described in docs/org.rmabroker.Broker1.xml. */
#pragma once

#define RMA_BUS_NAME        "org.rmabroker.Broker1"
#define RMA_OBJECT_PATH     "/org/rmabroker/Broker1"
#define RMA_INTERFACE       "org.rmabroker.Broker1"
#define RMA_SOCKET_NAME     "broker.sock"
/* Beside broker.sock: the same service for root and the QemuUsers alone, with a backlog
 * no other local account can fill (the hook and the wrapper use it first). */
#define RMA_PRIVILEGED_SOCKET_NAME "broker-priv.sock"
/* Beside broker.sock: the hook's record of each domain it opted in (client/rma-client.h). */
#define RMA_DOMAINS_DIR_NAME "domains"
/* Beside broker.sock: present while the host is draining (rmactl drain); holds the reason. */
#define RMA_DRAIN_FILE_NAME "drain"
/* libvirtd's status XML of running QEMU domains. */
#define RMA_LIBVIRT_STATUS_DIR "/run/libvirt/qemu"
#define RMA_SOCKET_ENV      "RMA_BROKER_SOCKET"

#define RMA_ERROR_PREFIX          "org.rmabroker.Broker1.Error."
#define RMA_ERROR_INVALID_ARGUMENT RMA_ERROR_PREFIX "InvalidArgument"
#define RMA_ERROR_ACCESS_DENIED    RMA_ERROR_PREFIX "AccessDenied"
#define RMA_ERROR_POOL_EXHAUSTED   RMA_ERROR_PREFIX "PoolExhausted"
#define RMA_ERROR_QUOTA_EXCEEDED   RMA_ERROR_PREFIX "QuotaExceeded"
#define RMA_ERROR_NO_SUCH_TENANT   RMA_ERROR_PREFIX "NoSuchTenant"
#define RMA_ERROR_NOT_RESERVED     RMA_ERROR_PREFIX "NotReserved"
#define RMA_ERROR_ALREADY_CLAIMED  RMA_ERROR_PREFIX "AlreadyClaimed"
#define RMA_ERROR_ALREADY_RESERVED RMA_ERROR_PREFIX "AlreadyReserved"
#define RMA_ERROR_POLICY_INVALID   RMA_ERROR_PREFIX "PolicyInvalid"
#define RMA_ERROR_BACKEND_FAILED   RMA_ERROR_PREFIX "BackendFailed"
#define RMA_ERROR_DRAINING         RMA_ERROR_PREFIX "Draining"

/* How long the broker waits for polkit when a call allows interactive authorization (a
 * person typing a password), and so how long such a client waits for the answer. */
#define RMA_INTERACTIVE_AUTH_TIMEOUT_USEC (5ULL * 60ULL * 1000000ULL)

/* libvirt domain metadata namespace for opting a domain in. */
#define RMA_LIBVIRT_XMLNS   "http://rmabroker.org/schemas/domain/1"
/* Nova's metadata namespace, any version (1.0, 1.1, ...). */
#define RMA_NOVA_XMLNS_PREFIX "http://openstack.org/xmlns/libvirt/nova/"

/* Longest domain or tenant name the broker accepts. */
#define RMA_NAME_MAX 255
/* Canonical textual UUID length without the terminating NUL. */
#define RMA_UUID_STRING_LEN 36
