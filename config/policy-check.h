/* rmactl check-policy and rma-brokerd --check-policy: the tenant policy that a config
 * names, loaded and checked exactly as the daemon would, reported on stdout (valid) or
 * stderr (every problem, file:line). Shared by both programs, so they cannot disagree. */
#pragma once

#include "broker-config.h"

/* 0 when valid, -EINVAL when not. pool_source says where config->count came from ("the
 * running pool"); NULL: "a pool". */
int policy_check_report(const BrokerConfig *config, const char *pool_source);
