/* perfmon.h: XAPI's perfmon alarms (python3/bin/perfmon), evaluated on
 * each 5 s sample instead of perfmon's reads of /rrd_updates: the XML in
 * other_config:perfmon of a VM, the host or an SR,
 *
 *   <config><variable><name value="cpu_usage"/>
 *     <alarm_trigger_level value="0.5"/></variable></config>
 *
 * names variables, each the consolidation (sum, average, max, or one of
 * the get_percent_* functions) of the sources its rrd_regex matches, with
 * perfmon's defaults per class; a variable beyond its level
 * (alarm_trigger_sense high or low) for alarm_trigger_period seconds
 * raises message "ALARM" of alarm_priority with perfmon's body ("value:
 * %f\nconfig:\n" and the <variable> as minidom's toprettyxml prints it),
 * then none for alarm_auto_inhibit_period seconds. A variable whose regex
 * matches no source is not evaluated (perfmon would consolidate an empty
 * list to 0). */
#pragma once

#include <stdint.h>

#include <glib.h>

#include "rrd_archive.h"

typedef struct Perfmon Perfmon;

typedef struct {
    char *cls;  /* "VM", "Host", "SR" */
    char *uuid;
    int64_t priority;
    char *body;
} PerfmonAlarm;
void perfmon_alarm_free(gpointer alarm);

Perfmon *perfmon_new(void);
void perfmon_free(Perfmon *pm);

/* One 5 s step of the object's monitor: config is its other_config:perfmon
 * (NULL or "" for none); rrd its archive (NULL: none), whose last primary
 * points are the values; alarms due are appended to alarms
 * (PerfmonAlarm*). A variable keeps its state while its XML is unchanged,
 * as perfmon's do. */
void perfmon_step(Perfmon *pm, const char *cls, const char *uuid, const char *config,
                  const Rrd *rrd, int64_t now, GPtrArray *alarms);
/* The same for the host's variable an SR's config names
 * sr_io_throughput_total_per_host (perfmon's secondary config): it becomes
 * the host's sr_io_throughput_total_<sr8> over io_throughput_total_<sr8>,
 * unless the host's own config has one of that name (step the host
 * first). */
void perfmon_step_sr_for_host(Perfmon *pm, const char *host_uuid, const char *sr_uuid,
                              const char *sr_config, const Rrd *host_rrd, int64_t now,
                              GPtrArray *alarms);
/* Forgets the monitors not stepped since the round that began at now. */
void perfmon_expire(Perfmon *pm, int64_t now);
