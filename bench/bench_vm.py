"""The VM record the benchmarks create by the thousand: a halted,
memory-only VM marked other_config:bench=true."""

VM_RECORD = {"name_label": "bench", "name_description": "", "user_version": "1",
             "is_a_template": False, "memory_static_max": "268435456",
             "memory_dynamic_max": "268435456", "memory_dynamic_min": "268435456",
             "memory_static_min": "16777216", "VCPUs_max": "1", "VCPUs_at_startup": "1",
             "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
             "actions_after_crash": "restart", "PV_bootloader": "", "PV_kernel": "",
             "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "",
             "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
             "HVM_boot_params": {"order": "dc"}, "platform": {"acpi": "1"},
             "PCI_bus": "", "other_config": {"bench": "true"}, "recommendations": "",
             "VCPUs_params": {}, "affinity": "OpaqueRef:NULL"}
