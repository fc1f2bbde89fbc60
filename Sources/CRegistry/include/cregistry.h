// SPDX-License-Identifier: GPL-2.0-only
// The bounds of the linker section that scenario registration records live in
// (`@used @section("kvmsim_scenarios")` in Swift). GNU ld and lld define
// __start_<name> and __stop_<name> for a section whose name is a C identifier.
#ifndef KVMSIM_CREGISTRY_H
#define KVMSIM_CREGISTRY_H

/// Start and end of the records; both NULL when no record was linked in.
const void *kvmsim_scenario_records_start(void);
const void *kvmsim_scenario_records_end(void);

#endif
