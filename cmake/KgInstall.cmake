# Installation: headers, libraries, kgmon, a CMake package and pkg-config
# files, all relocatable (`cmake --install build --prefix ANYWHERE` works:
# nothing installed names the configure-time prefix), and a .deb with cpack.
include(CMakePackageConfigHelpers)

set(KG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kaygraph)
set(KG_INSTALL_TARGETS kaygraph)
if(NOT BUILD_SHARED_LIBS)
  # Static libraries need the support layer at the user's link.
  list(APPEND KG_INSTALL_TARGETS kaygraph_util)
endif()
if(TARGET kaygraph_dashboard)
  list(APPEND KG_INSTALL_TARGETS kaygraph_dashboard)
endif()

install(TARGETS ${KG_INSTALL_TARGETS} EXPORT kaygraphTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/kaygraph DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT kaygraphTargets NAMESPACE kaygraph:: DESTINATION ${KG_CMAKE_DIR})

configure_package_config_file(cmake/kaygraphConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/kaygraphConfig.cmake
  INSTALL_DESTINATION ${KG_CMAKE_DIR})
# Within one MAJOR version the ABI only grows (docs/abi.md).
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/kaygraphConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/kaygraphConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/kaygraphConfigVersion.cmake
        DESTINATION ${KG_CMAKE_DIR})

# pkg-config: paths relative to the .pc file itself (${pcfiledir}), so the
# tree can be installed or moved anywhere.  KG_PC_TO_PREFIX climbs from
# <libdir>/pkgconfig back to the prefix.
file(RELATIVE_PATH KG_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" KG_PC_TO_PREFIX "${KG_PC_TO_PREFIX}")
if(BUILD_SHARED_LIBS)
  set(KG_PC_PRIVATE "Requires.private")
else()
  set(KG_PC_PRIVATE "Requires")   # a static library needs its dependencies at link time
endif()
set(KG_PC_FILES kaygraph)
if(TARGET kaygraph_dashboard)
  list(APPEND KG_PC_FILES kaygraph-dashboard)
endif()
foreach(pc ${KG_PC_FILES})
  configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()

# cpack -G DEB: a Debian package of the libraries, headers and kgmon; its
# dependencies come from dpkg-shlibdeps, so they match what was linked.
set(CPACK_PACKAGE_NAME kaygraph)
set(CPACK_PACKAGE_VENDOR "kaygraph-c")
set(CPACK_PACKAGE_CONTACT "kaygraph-c maintainers <kaygraph-c@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "KayGraph workflow engine in C with real-time monitoring and a live dashboard")
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
# The headers include <jansson.h>.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libjansson-dev")
include(CPack)
