/* inv_device_sql.h: the SQL that writes a device's filterable inventory row
 * (inv_device), shared by store/inventory.c (store_inventory_device_set and
 * its PostgreSQL read-back) and store/core.c (PostgreSQL's report statement,
 * which writes it with a DeviceInformation answer). Private to src/store. */
#ifndef STEWARD_INV_DEVICE_SQL_H
#define STEWARD_INV_DEVICE_SQL_H

#define INV_DEVICE_COLS                                                                            \
    "enrollment_id, os_version, os_num, build_version, model, model_name, product_name,"          \
    " serial_number, device_name, supervised, battery_pct, capacity_mb, available_mb, device_at"

/* COALESCE keeps what an answer did not include (a NULL bind). */
#define INV_DEVICE_UPSERT                                                                          \
    " ON CONFLICT (enrollment_id) DO UPDATE SET"                                                   \
    " os_version = COALESCE(excluded.os_version, inv_device.os_version),"                         \
    " os_num = COALESCE(excluded.os_num, inv_device.os_num),"                                     \
    " build_version = COALESCE(excluded.build_version, inv_device.build_version),"                \
    " model = COALESCE(excluded.model, inv_device.model),"                                        \
    " model_name = COALESCE(excluded.model_name, inv_device.model_name),"                         \
    " product_name = COALESCE(excluded.product_name, inv_device.product_name),"                   \
    " serial_number = COALESCE(excluded.serial_number, inv_device.serial_number),"                \
    " device_name = COALESCE(excluded.device_name, inv_device.device_name),"                      \
    " supervised = COALESCE(excluded.supervised, inv_device.supervised),"                         \
    " battery_pct = COALESCE(excluded.battery_pct, inv_device.battery_pct),"                      \
    " capacity_mb = COALESCE(excluded.capacity_mb, inv_device.capacity_mb),"                      \
    " available_mb = COALESCE(excluded.available_mb, inv_device.available_mb),"                   \
    " device_at = excluded.device_at"

#endif
