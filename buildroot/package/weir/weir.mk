################################################################################
#
# weir
#
################################################################################

# The package is the repository this BR2_EXTERNAL tree lives in (its
# buildroot/ folder), built as a local package: Buildroot copies the
# checkout into its build directory with rsync, so the image always holds
# what the checkout holds.
WEIR_SITE = $(realpath $(BR2_EXTERNAL_WEIR_PATH)/..)
WEIR_SITE_METHOD = local
# The same version string `make cross` stamps (the Makefile's VERSION).
WEIR_VERSION := $(shell git -C $(BR2_EXTERNAL_WEIR_PATH)/.. describe --tags --always --dirty 2>/dev/null || echo dev)
# The repository names no licence yet; set these when it does.
# WEIR_LICENSE =
# WEIR_LICENSE_FILES =

# Built output, caches and test leftovers in the checkout are not sources.
WEIR_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/bin --exclude=/weir-data --exclude=/demo-out \
	--exclude=/pki --exclude=/records.jsonl*

WEIR_GOMOD = github.com/weirgw/weir
WEIR_BUILD_TARGETS = cmd/weir
WEIR_LDFLAGS = -s -w -X main.version=$(WEIR_VERSION)
# Static, whatever the toolchain offers: the firmware never links C.
WEIR_GO_ENV = CGO_ENABLED=0

# go.mod's go line is the Go release the firmware is built and tested
# with.
WEIR_GO_TOOLCHAIN := go$(shell sed -n 's/^go //p' $(BR2_EXTERNAL_WEIR_PATH)/../go.mod 2>/dev/null)

# A local package skips the download step, where the golang-package
# infrastructure vendors Go modules, and the repository commits no
# vendor/ folder: vendor here, before the build, through the proxy the
# configuration names. The same go command fetches the release go.mod
# asks for when Buildroot's host-go is older (GOTOOLCHAIN), into this
# package's Go module cache, where the offline build step (GOPROXY=off)
# finds it. With no proxy configured the checkout must hold vendor/.
WEIR_GOPROXY = $(call qstrip,$(BR2_PACKAGE_WEIR_GOPROXY))
ifneq ($(WEIR_GOPROXY),)
WEIR_GO_ENV += GOTOOLCHAIN=$(WEIR_GO_TOOLCHAIN)
define WEIR_GO_VENDOR
	if [ ! -d $(@D)/vendor ]; then \
		cd $(@D) && $(HOST_GO_COMMON_ENV) GOTOOLCHAIN=$(WEIR_GO_TOOLCHAIN) \
			GOPROXY="$(WEIR_GOPROXY)" $(GO_BIN) mod vendor -modcacherw; \
	fi
endef
WEIR_PRE_BUILD_HOOKS += WEIR_GO_VENDOR
else
define WEIR_GO_CHECK_VENDOR
	@test -d $(@D)/vendor || { \
		echo "weir: no vendor/ folder in $(WEIR_SITE) and BR2_PACKAGE_WEIR_GOPROXY is empty: run 'go mod vendor' in the checkout, or name a proxy"; \
		exit 1; }
endef
WEIR_PRE_BUILD_HOOKS += WEIR_GO_CHECK_VENDOR
endif

# The gateway's own user: its spool's home, serial lines through dialout.
define WEIR_USERS
	weir -1 weir -1 * /var/lib/weir - dialout Weir edge gateway
endef

# The service files `make install` puts in place (dist/README.md).
define WEIR_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/dist/busybox/S95weir \
		$(TARGET_DIR)/etc/init.d/S95weir
endef

define WEIR_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/dist/systemd/weir.service \
		$(TARGET_DIR)/usr/lib/systemd/system/weir.service
	$(INSTALL) -D -m 0644 $(@D)/dist/systemd/weir.sysusers \
		$(TARGET_DIR)/usr/lib/sysusers.d/weir.conf
endef

ifeq ($(BR2_PACKAGE_HAS_UDEV),y)
define WEIR_INSTALL_UDEV_RULE
	$(INSTALL) -D -m 0644 $(@D)/dist/udev/90-weir.rules \
		$(TARGET_DIR)/usr/lib/udev/rules.d/90-weir.rules
endef
WEIR_POST_INSTALL_TARGET_HOOKS += WEIR_INSTALL_UDEV_RULE
endif

$(eval $(golang-package))
