# dsnn_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>])
# Builds a dsnn plugin: a MODULE library named <name>.so in the plugin output directory, with
# hidden visibility (only dsnn_plugin_entry is exported), linked against libdsnn.
function(dsnn_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY ${DSNN_PLUGIN_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden)
  target_link_libraries(${name} PRIVATE dsnn ${P_LIBRARIES})
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  install(TARGETS ${name} LIBRARY DESTINATION lib/dsnn/plugins)
endfunction()
