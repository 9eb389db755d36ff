# The Debian package: `cpack -G DEB` in a build tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr writes siobridge_<version>_<arch>.deb. Its
# Depends are derived from the binaries by dpkg-shlibdeps; its maintainer
# scripts (deploy/debian/) add the siobridge system user and enable the unit
# the way debhelper's would.

set(CPACK_PACKAGE_NAME siobridge)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "siobridge developers")
set(CPACK_PACKAGE_CONTACT "siobridge developers <dev@siobridge.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "socket.io cluster sidecar: scale socket.io servers through MongoDB")
set(CPACK_PACKAGE_DESCRIPTION
    "siobridged runs beside the socket.io servers of a host. They attach to it over gRPC; the\n"
    "daemons of all hosts form one cluster through a MongoDB collection, speaking the\n"
    "socketioxide-mongodb protocol. siobridgectl inspects and drives a daemon.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_GENERATOR DEB)
# The package installs where this tree was configured to install, so that the
# paths in the generated unit are the packaged ones.
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")

set(CPACK_DEBIAN_PACKAGE_NAME siobridge)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser for the system user in postinst; the libraries come from dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Release binaries without their symbol tables, as Debian ships them.
set(CPACK_STRIP_FILES ON)

# conffiles: dpkg keeps an administrator's edits across upgrades.
file(WRITE ${PROJECT_BINARY_DIR}/deploy/debian/conffiles "${SIOBRIDGE_CONFIG_DIR}/siobridged.yaml\n")
foreach(script postinst prerm postrm)
  configure_file(${PROJECT_SOURCE_DIR}/deploy/debian/${script}
                 ${PROJECT_BINARY_DIR}/deploy/debian/${script} COPYONLY)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/deploy/debian/conffiles
    ${PROJECT_BINARY_DIR}/deploy/debian/postinst
    ${PROJECT_BINARY_DIR}/deploy/debian/prerm
    ${PROJECT_BINARY_DIR}/deploy/debian/postrm)

include(CPack)
