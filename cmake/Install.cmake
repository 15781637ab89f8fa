# `cmake --install`: library, headers, generator, CMake package (find_package(flatlane)).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FLATLANE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/flatlane")
set(FLATLANE_INSTALL_GENERATOR_DIR "${CMAKE_INSTALL_DATADIR}/flatlane/generator")

set_target_properties(flatlane_runtime PROPERTIES EXPORT_NAME runtime)
install(TARGETS flatlane_runtime EXPORT flatlaneTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS flatlane_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # the `flatlane` CLI (docs/CLI.md)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/cpp/include/flatlane DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT flatlaneTargets NAMESPACE flatlane:: DESTINATION ${FLATLANE_INSTALL_CMAKEDIR})

install(DIRECTORY ${PROJECT_SOURCE_DIR}/generator/flatlane_gen DESTINATION ${FLATLANE_INSTALL_GENERATOR_DIR}
        PATTERN __pycache__ EXCLUDE)
file(RELATIVE_PATH FLATLANE_GENERATOR_REL "/${CMAKE_INSTALL_BINDIR}" "/${FLATLANE_INSTALL_GENERATOR_DIR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/flatlane-gen.in ${PROJECT_BINARY_DIR}/flatlane-gen @ONLY)
install(PROGRAMS ${PROJECT_BINARY_DIR}/flatlane-gen DESTINATION ${CMAKE_INSTALL_BINDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/flatlaneConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/flatlaneConfig.cmake
                              INSTALL_DESTINATION ${FLATLANE_INSTALL_CMAKEDIR}
                              PATH_VARS FLATLANE_INSTALL_GENERATOR_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/flatlaneConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/flatlaneConfig.cmake ${PROJECT_BINARY_DIR}/flatlaneConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/FlatlaneGenerate.cmake
        DESTINATION ${FLATLANE_INSTALL_CMAKEDIR})
