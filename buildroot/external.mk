include $(sort $(wildcard $(BR2_EXTERNAL_WEIR_PATH)/package/*/*.mk))
