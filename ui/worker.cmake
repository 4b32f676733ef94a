# mamba_worker: the EngineWorker (the engine on its own QThread) with the plain values its queued signals
# carry. Qt 6 Core only. Every ui/EngineWorker*.cpp is a part of it (one file per kind of engine work).
file(GLOB MAMBA_WORKER_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/EngineWorker*.cpp ${CMAKE_CURRENT_LIST_DIR}/EngineWorker.h)
add_library(mamba_worker STATIC
  ${MAMBA_WORKER_SOURCES}
  ${CMAKE_CURRENT_LIST_DIR}/EngineTypes.h ${CMAKE_CURRENT_LIST_DIR}/EngineTypes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/EngineThread.h ${CMAKE_CURRENT_LIST_DIR}/EngineThread.cpp
  ${CMAKE_CURRENT_LIST_DIR}/MatrixTypes.h
  ${CMAKE_CURRENT_LIST_DIR}/CompareTypes.h ${CMAKE_CURRENT_LIST_DIR}/CompareTypes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/SnapshotTypes.h ${CMAKE_CURRENT_LIST_DIR}/SnapshotStore.h ${CMAKE_CURRENT_LIST_DIR}/SnapshotStore.cpp
)
set_target_properties(mamba_worker PROPERTIES AUTOMOC ON)
target_link_libraries(mamba_worker PUBLIC mamba_backends Qt6::Core)
