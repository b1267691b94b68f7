# Finds every third-party dependency up front. A missing one stops configuration with a
# message naming the Debian package that provides it (scripts/setup installs them all).

function(kiln_missing what debpkg)
  message(FATAL_ERROR "kiln: ${what} not found. Install the Debian package '${debpkg}' "
                      "(or run scripts/setup, which installs every dependency).")
endfunction()

find_package(PkgConfig QUIET)
if(NOT PkgConfig_FOUND)
  kiln_missing("pkg-config" "pkg-config")
endif()

# pkg-config modules: (imported target suffix, module, Debian package)
macro(kiln_pkg name module debpkg)
  pkg_check_modules(${name} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${name}_FOUND)
    kiln_missing("${module} (pkg-config module)" "${debpkg}")
  endif()
endmacro()

kiln_pkg(SECCOMP libseccomp libseccomp-dev)
kiln_pkg(ARCHIVE libarchive libarchive-dev)
kiln_pkg(CURL libcurl libcurl4-openssl-dev)
# kiln-vmm's NBD drives (vmm/devices/block_nbd_backend); kilnd's NBD server is tested with it
kiln_pkg(NBD libnbd libnbd-dev)
# chunked block images (rootfs-builder/chunks)
kiln_pkg(ZSTD libzstd libzstd-dev)
# kilnd's packet filter (src/net/nftables)
kiln_pkg(NFTABLES libnftables libnftables-dev)
# rtnetlink: kilnd's instance networks (src/net, shared libs) and kiln-init's (guest-agent/net,
# the static archives of the same packages)
kiln_pkg(NL libnl-3.0 libnl-3-dev)
kiln_pkg(NL_ROUTE libnl-route-3.0 libnl-route-3-dev)

# libfdt ships no pkg-config file on Debian 12.
find_path(FDT_INCLUDE_DIR libfdt.h)
find_library(FDT_LIBRARY fdt)
if(NOT FDT_INCLUDE_DIR OR NOT FDT_LIBRARY)
  kiln_missing("libfdt (libfdt.h, libfdt.so)" "libfdt-dev")
endif()
add_library(kiln_fdt INTERFACE)
target_include_directories(kiln_fdt INTERFACE ${FDT_INCLUDE_DIR})
target_link_libraries(kiln_fdt INTERFACE ${FDT_LIBRARY})

find_package(OpenSSL QUIET)
if(NOT OpenSSL_FOUND)
  kiln_missing("OpenSSL" "libssl-dev")
endif()

find_package(nlohmann_json 3.10 QUIET CONFIG)
if(NOT nlohmann_json_FOUND)
  kiln_missing("nlohmann/json" "nlohmann-json3-dev")
endif()

find_package(Boost 1.74 QUIET CONFIG)
if(NOT Boost_FOUND)
  kiln_missing("Boost" "libboost-dev")
endif()
find_path(BOOST_BEAST_INCLUDE boost/beast.hpp HINTS ${Boost_INCLUDE_DIRS})
if(NOT BOOST_BEAST_INCLUDE)
  kiln_missing("Boost.Beast (boost/beast.hpp)" "libboost-dev")
endif()

find_package(GTest QUIET CONFIG)
if(NOT GTest_FOUND)
  kiln_missing("GoogleTest" "libgtest-dev")
endif()
if(NOT TARGET GTest::gmock)
  kiln_missing("GoogleMock" "libgmock-dev")
endif()

find_package(Threads REQUIRED)
