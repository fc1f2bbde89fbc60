// SPDX-License-Identifier: GPL-2.0-only
#include "cregistry.h"

extern const char __start_kvmsim_scenarios[] __attribute__((weak));
extern const char __stop_kvmsim_scenarios[] __attribute__((weak));

const void *kvmsim_scenario_records_start(void) { return __start_kvmsim_scenarios; }
const void *kvmsim_scenario_records_end(void) { return __stop_kvmsim_scenarios; }
