# dsnn_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>] [NO_INSTALL])
# Builds a dsnn plugin: a MODULE library <name>.so (no "lib" prefix) with hidden visibility (only
# dsnn_plugin_entry is exported), linked against libdsnn (target dsnn::dsnn) with
# --no-undefined, so that a missing symbol is a link error rather than a load error.
#   output:  ${DSNN_PLUGIN_OUTPUT_DIR} (default <build>/plugins): point dsnn-host at it with
#            --plugin-dir <build>/plugins
#   install: ${DSNN_PLUGIN_INSTALL_DIR} (default <libdir>/dsnn/plugins under the install
#            prefix; installed into the SDK's own prefix, dsnn-host loads it by default),
#            component ${DSNN_PLUGIN_COMPONENT} (default runtime); NO_INSTALL: none.
# The same file serves the plugins of the dsnn tree and, installed with the CMake package
# (find_package(dsnn)), third-party plugins built out of tree.
include(GNUInstallDirs)
function(dsnn_add_plugin name)
  cmake_parse_arguments(P "NO_INSTALL" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "dsnn_add_plugin(${name}): no SOURCES")
  endif()
  if(NOT TARGET dsnn::dsnn)
    message(FATAL_ERROR "dsnn_add_plugin(${name}): no target dsnn::dsnn (find_package(dsnn) first)")
  endif()
  set(out "${DSNN_PLUGIN_OUTPUT_DIR}")
  if(NOT out)
    set(out "${CMAKE_BINARY_DIR}/plugins")
  endif()
  set(dest "${DSNN_PLUGIN_INSTALL_DIR}")
  if(NOT dest)
    set(dest "${CMAKE_INSTALL_LIBDIR}/dsnn/plugins")
  endif()
  set(component "${DSNN_PLUGIN_COMPONENT}")
  if(NOT component)
    set(component runtime)
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY "${out}"
    C_VISIBILITY_PRESET hidden
    C_STANDARD 11
    POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(${name} PRIVATE dsnn::dsnn ${P_LIBRARIES})
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  if(NOT P_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION "${dest}" COMPONENT ${component})
  endif()
endfunction()
