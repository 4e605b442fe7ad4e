# kg_library(<name> EXPORT_NAME <n> [DEPENDS <our library>] [PUBLIC_LIBS ...]
#            [PRIVATE_LIBS ...])
#
# One set of objects, compiled once with hidden visibility, becomes two
# libraries:
#   <name>            what users link (shared by default): exports only the
#                     functions marked KG_API in include/kaygraph/, has the
#                     SONAME of docs/abi.md, installs as kaygraph::<n>
#   <name>_internal   a static archive of the same objects, for our tests,
#                     fuzz targets and internal benchmarks, which need the
#                     internals (hidden visibility does not hide symbols from
#                     a static link)
# DEPENDS names another kg_library: <name> links it, <name>_internal links its
# _internal twin, so a test never mixes the two copies.
# Both link the support layer (src/util, kaygraph_util) privately.
# Sources are added to <name>_objects with target_sources() by each source
# directory.
function(kg_library name)
  cmake_parse_arguments(L "" "EXPORT_NAME;DEPENDS" "PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  add_library(${name}_objects OBJECT)
  set_target_properties(${name}_objects PROPERTIES
                        POSITION_INDEPENDENT_CODE ON
                        C_VISIBILITY_PRESET hidden)
  target_include_directories(${name}_objects
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name}_objects PUBLIC ${L_PUBLIC_LIBS}
                        PRIVATE kaygraph_util ${L_PRIVATE_LIBS})

  add_library(${name} $<TARGET_OBJECTS:${name}_objects>)
  add_library(kaygraph::${L_EXPORT_NAME} ALIAS ${name})
  set_target_properties(${name} PROPERTIES
                        VERSION ${PROJECT_VERSION}
                        SOVERSION ${PROJECT_VERSION_MAJOR}
                        EXPORT_NAME ${L_EXPORT_NAME}
                        # The libraries find each other in their own directory,
                        # wherever the install prefix is.
                        INSTALL_RPATH "$ORIGIN")
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${name} PUBLIC ${L_DEPENDS} ${L_PUBLIC_LIBS}
                        PRIVATE kaygraph_util ${L_PRIVATE_LIBS})

  add_library(${name}_internal STATIC $<TARGET_OBJECTS:${name}_objects>)
  target_include_directories(${name}_internal PUBLIC ${PROJECT_SOURCE_DIR}/include
                                                     ${PROJECT_SOURCE_DIR}/src)
  if(L_DEPENDS)
    target_link_libraries(${name}_internal PUBLIC ${L_DEPENDS}_internal)
  endif()
  target_link_libraries(${name}_internal PUBLIC kaygraph_util ${L_PUBLIC_LIBS} ${L_PRIVATE_LIBS})
endfunction()
