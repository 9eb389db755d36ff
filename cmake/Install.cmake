# What `cmake --install` (and so the Debian package) puts where: the two
# binaries, the systemd unit (configured for this prefix), the configuration
# file and the documentation the unit and the binaries point at.
#
# With -DCMAKE_INSTALL_PREFIX=/usr (as the package is built) the configuration
# goes to /etc/siobridge and the unit to /lib/systemd/system; with the default
# /usr/local both stay under the prefix, where systemd also looks.

include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(siobridge_unit_dir_default "/lib/systemd/system")
else()
  set(siobridge_unit_dir_default "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(SIOBRIDGE_SYSTEMD_UNIT_DIR "${siobridge_unit_dir_default}"
    CACHE PATH "where the systemd unit is installed")

set(SIOBRIDGE_CONFIG_DIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/siobridge")
set(SIOBRIDGE_DOC_DIR "${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/siobridge")

install(TARGETS siobridged siobridgectl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The unit names the installed paths, so it is generated for this prefix.
configure_file(${PROJECT_SOURCE_DIR}/deploy/siobridged.service.in
               ${PROJECT_BINARY_DIR}/deploy/siobridged.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/deploy/siobridged.service
        DESTINATION ${SIOBRIDGE_SYSTEMD_UNIT_DIR})

# The installed configuration is config/siobridged.yaml (every key with its
# default) with the two paths a system service needs set, so that the file, not
# the unit's environment, is where an administrator changes them.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/config/siobridged.yaml)
file(READ ${PROJECT_SOURCE_DIR}/config/siobridged.yaml siobridge_sample_config)
foreach(line "unix: /run/siobridge/siobridged.sock" "state_dir: /var/lib/siobridge")
  string(FIND "${siobridge_sample_config}" "  # ${line}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "config/siobridged.yaml no longer has the line \"  # ${line}\"")
  endif()
  string(REPLACE "  # ${line}\n" "  ${line}\n" siobridge_sample_config "${siobridge_sample_config}")
endforeach()
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/deploy/siobridged.yaml
     CONTENT "${siobridge_sample_config}")
# Not world-readable: mongodb.uri may hold a password. The package's postinst
# gives it the group siobridge (dpkg-statoverride), which the service runs as.
install(FILES ${PROJECT_BINARY_DIR}/deploy/siobridged.yaml DESTINATION ${SIOBRIDGE_CONFIG_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

install(FILES README.md docs/running.md docs/PROTOCOL.md DESTINATION ${SIOBRIDGE_DOC_DIR})
install(FILES config/siobridged.yaml DESTINATION ${SIOBRIDGE_DOC_DIR}/examples)
